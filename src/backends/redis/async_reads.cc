#include "backends/redis/async_reads.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <array>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <utility>
#include <vector>

#include "core/log.h"

namespace cachekit::redis_internal {

namespace {

namespace asio = boost::asio;
using Socket = asio::generic::stream_protocol::socket;
using SteadyClock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

// How long calls go to the blocking path after a failure before the connection is tried again.
constexpr std::chrono::seconds kRetryAfter{1};

struct ReaderFree {
  void operator()(redisReader* reader) const noexcept { redisReaderFree(reader); }
};

// One get_many (or the handshake, which has no `done`): its replies arrive in order.
struct Call {
  std::size_t replies = 0;  // still to come
  AsyncReads::Done done{};
  AsyncReads::Values values{};
  SteadyClock::time_point deadline{};
  bool failed = false;  // a reply that was not a value: answered nullopt
  std::string error{};  // the handshake's error reply
};

// The connection and its calls. Completion handlers hold it (shared_from_this) and carry the
// generation they were started in: a handler of a connection that was closed since is ignored.
class Link : public std::enable_shared_from_this<Link> {
 public:
  Link(asio::io_context& loop, Endpoint endpoint, std::string key_namespace, Timeouts timeouts)
      : loop_(loop),
        socket_(loop),
        resolver_(loop),
        timer_(loop),
        endpoint_(std::move(endpoint)),
        namespace_(std::move(key_namespace)),
        timeouts_(timeouts),
        where_(endpoint_.describe()) {}

  void get_many(std::span<const std::string> keys, AsyncReads::Done done) {
    const auto now = SteadyClock::now();
    if (phase_ == Phase::kClosed || (phase_ == Phase::kDown && now < retry_at_)) {
      asio::post(loop_, [done = std::move(done)] { done(std::nullopt); });
      return;
    }
    if (keys.empty()) {
      asio::post(loop_, [done = std::move(done)] { done(AsyncReads::Values{}); });
      return;
    }
    for (const std::string& key : keys) {
      queued_.begin(2);
      queued_.arg("GET");
      queued_.arg(namespace_, key);
    }
    Call call{.replies = keys.size(), .done = std::move(done), .deadline = now + timeouts_.io};
    call.values.reserve(keys.size());
    if (phase_ != Phase::kOpen) call.deadline += timeouts_.connect;
    pending_.push_back(std::move(call));
    arm_timer();
    if (phase_ == Phase::kOpen) {
      flush();
    } else if (phase_ != Phase::kConnecting) {
      connect();
    }
  }

  void close() {
    phase_ = Phase::kClosed;
    ++generation_;
    ErrorCode ignored;
    resolver_.cancel();
    socket_.close(ignored);
    timer_.cancel();
    queued_.clear();
    // Answered from the loop, not from inside close(): its caller may be walking what the
    // callbacks would change.
    for (Call& call : std::exchange(pending_, {})) {
      if (call.done) asio::post(loop_, [done = std::move(call.done)] { done(std::nullopt); });
    }
  }

 private:
  enum class Phase : std::uint8_t { kIdle, kConnecting, kOpen, kDown, kClosed };

  void connect() {
    phase_ = Phase::kConnecting;
    const std::uint64_t generation = ++generation_;
    reader_.reset(redisReaderCreate());
    if (endpoint_.is_unix()) {
      start_connect(asio::local::stream_protocol::endpoint(endpoint_.socket_path));
      return;
    }
    ErrorCode ec;
    auto address = asio::ip::make_address(endpoint_.host, ec);
    if (!ec) {
      start_connect(asio::ip::tcp::endpoint(address, static_cast<std::uint16_t>(endpoint_.port)));
      return;
    }
    resolver_.async_resolve(
        endpoint_.host, std::to_string(endpoint_.port),
        [self = shared_from_this(), generation](
            const ErrorCode& error, const asio::ip::tcp::resolver::results_type& results) {
          if (generation != self->generation_) return;
          if (error || results.empty()) {
            return self->fail(fmt::format("cannot resolve {}: {}", self->endpoint_.host,
                                          error ? error.message() : "no address"));
          }
          self->start_connect(results.begin()->endpoint());
        });
  }

  void start_connect(const Socket::endpoint_type& target) {
    socket_.async_connect(
        target, [self = shared_from_this(), generation = generation_](const ErrorCode& ec) {
          if (generation != self->generation_) return;
          if (ec) return self->fail("connect: " + ec.message());
          self->opened();
        });
  }

  // AUTH, SELECT and the client name go first, in the same write as the calls queued so far.
  void opened() {
    if (!endpoint_.is_unix()) {
      ErrorCode ignored;
      socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    CommandBuffer hello;
    write_greeting(hello, endpoint_);
    pending_.push_front(
        Call{.replies = hello.commands(), .deadline = SteadyClock::now() + timeouts_.io});
    phase_ = Phase::kOpen;
    warned_ = false;
    writing_.assign(hello.data());
    writing_ += queued_.data();
    queued_.clear();
    write();
    read();
  }

  void flush() {
    if (phase_ != Phase::kOpen || write_in_flight_ || queued_.commands() == 0) return;
    writing_.assign(queued_.data());
    queued_.clear();
    write();
  }

  void write() {
    write_in_flight_ = true;
    asio::async_write(
        socket_, asio::buffer(writing_),
        [self = shared_from_this(), generation = generation_](const ErrorCode& ec, std::size_t) {
          if (generation != self->generation_) return;
          self->write_in_flight_ = false;
          if (ec) return self->fail("write: " + ec.message());
          self->flush();
        });
  }

  void read() {
    socket_.async_read_some(
        asio::buffer(in_),
        [self = shared_from_this(), generation = generation_](const ErrorCode& ec, std::size_t n) {
          if (generation != self->generation_) return;
          if (ec == asio::error::eof && self->pending_.empty()) return self->idle_close();
          if (ec) return self->fail("read: " + ec.message());
          self->received(n);
          if (generation == self->generation_) self->read();
        });
  }

  void received(std::size_t n) {
    const std::uint64_t generation = generation_;
    if (redisReaderFeed(reader_.get(), in_.data(), n) != REDIS_OK) {
      return fail("unreadable reply");
    }
    for (;;) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
        return fail(fmt::format("unreadable reply: {}", reader_->errstr));
      }
      if (raw == nullptr) return;
      Reply reply(static_cast<redisReply*>(raw));
      if (pending_.empty()) return fail("a reply nothing asked for");
      Call& call = pending_.front();
      if (!call.done) {
        if (reply->type == REDIS_REPLY_ERROR && call.error.empty()) {
          call.error.assign(reply->str, reply->len);
        }
      } else if (reply->type == REDIS_REPLY_STRING) {
        call.values.emplace_back(Bytes(std::string_view(reply->str, reply->len)));
      } else if (reply->type == REDIS_REPLY_NIL) {
        call.values.emplace_back();
      } else {
        call.failed = true;  // WRONGTYPE, a replica's error...: the blocking path reports it
      }
      if (--call.replies > 0) continue;
      Call finished = std::move(call);
      pending_.pop_front();
      if (!finished.done) {
        if (!finished.error.empty()) return fail("connection setup refused: " + finished.error);
        continue;
      }
      if (finished.failed) {
        finished.done(std::nullopt);
      } else {
        finished.done(std::move(finished.values));
      }
      if (generation != generation_) return;  // the callback closed the connection
    }
  }

  void arm_timer() {
    if (timer_armed_ || pending_.empty()) return;
    timer_armed_ = true;
    timer_.expires_at(pending_.front().deadline);
    timer_.async_wait([self = shared_from_this()](const ErrorCode&) {
      self->timer_armed_ = false;
      if (self->phase_ == Phase::kClosed) return;
      if (!self->pending_.empty() && self->pending_.front().deadline <= SteadyClock::now()) {
        return self->fail(fmt::format("no answer within {} ms", self->timeouts_.io.count()));
      }
      self->arm_timer();
    });
  }

  // The server closed an idle connection (a restart, its idle timeout): open a new one on the
  // next call, whose failure to connect would then count.
  void idle_close() {
    ++generation_;
    ErrorCode ignored;
    socket_.close(ignored);
    phase_ = Phase::kIdle;
  }

  void fail(const std::string& why) {
    ++generation_;
    ErrorCode ignored;
    resolver_.cancel();
    socket_.close(ignored);
    write_in_flight_ = false;
    queued_.clear();
    phase_ = Phase::kDown;
    retry_at_ = SteadyClock::now() + kRetryAfter;
    if (!warned_) {
      warned_ = true;
      detail::logger()->warn(
          "redis {}: pipelined reads failed ({}); the blocking path serves "
          "them until a new connection works",
          where_, why);
    }
    answer_all_failed();
  }

  // Pending calls are answered after the state is settled: a callback may call get_many.
  void answer_all_failed() {
    std::deque<Call> calls = std::move(pending_);
    pending_.clear();
    for (Call& call : calls) {
      if (call.done) call.done(std::nullopt);
    }
  }

  asio::io_context& loop_;
  Socket socket_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  const Endpoint endpoint_;
  const std::string namespace_;
  const Timeouts timeouts_;
  const std::string where_;

  Phase phase_ = Phase::kIdle;
  std::uint64_t generation_ = 0;
  SteadyClock::time_point retry_at_{};
  bool timer_armed_ = false;
  bool write_in_flight_ = false;
  bool warned_ = false;
  std::deque<Call> pending_;
  CommandBuffer queued_;  // commands for the next write
  std::string writing_;   // the bytes of the write in flight
  std::array<char, 16384> in_{};
  std::unique_ptr<redisReader, ReaderFree> reader_;
};

class RedisAsyncReads final : public AsyncReads {
 public:
  explicit RedisAsyncReads(std::shared_ptr<Link> link) : link_(std::move(link)) {}
  ~RedisAsyncReads() override {
    try {
      link_->close();
    } catch (const std::exception& e) {  // posting the pending answers could not allocate
      detail::logger()->error("redis: closing pipelined reads: {}", e.what());
    }
  }
  RedisAsyncReads(const RedisAsyncReads&) = delete;
  RedisAsyncReads& operator=(const RedisAsyncReads&) = delete;

  void get_many(std::span<const std::string> keys, Done done) override {
    link_->get_many(keys, std::move(done));
  }
  void close() override { link_->close(); }

 private:
  std::shared_ptr<Link> link_;
};

}  // namespace

std::unique_ptr<AsyncReads> make_async_reads(boost::asio::io_context& loop, Endpoint endpoint,
                                             std::string key_namespace, Timeouts timeouts) {
  return std::make_unique<RedisAsyncReads>(
      std::make_shared<Link>(loop, std::move(endpoint), std::move(key_namespace), timeouts));
}

}  // namespace cachekit::redis_internal
