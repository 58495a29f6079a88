// Upstreams: the proxy's HTTP/1.1 client to its origins (proxy.h tells what it promises).
//
// A blocking client, because it runs on the server's handler threads (which may block, like a
// Django view). Beast serializes the request and parses the answer; the socket underneath is a
// plain POSIX one driven with poll(), so that every read and write honours the request's
// deadline (Asio's synchronous calls wait without a timeout). Connections are pooled per
// origin and reused while the origin keeps them alive.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cachekit/proxy/proxy.h"
#include "core/log.h"

namespace cachekit::proxy {

namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using Clock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;

// A connected socket whose reads and writes give up at a deadline: a SyncReadStream and
// SyncWriteStream for Beast.
class TimedSocket {
 public:
  explicit TimedSocket(int fd) : fd_(fd) {}
  ~TimedSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  TimedSocket(const TimedSocket&) = delete;
  TimedSocket& operator=(const TimedSocket&) = delete;

  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }
  [[nodiscard]] bool timed_out() const { return timed_out_; }

  template <class Buffers>
  std::size_t read_some(const Buffers& buffers, ErrorCode& ec) {
    auto buffer = *boost::asio::buffer_sequence_begin(buffers);
    for (;;) {
      if (!wait(POLLIN, ec)) return 0;
      ssize_t n = ::recv(fd_, buffer.data(), buffer.size(), 0);
      if (n > 0) {
        received_ += static_cast<std::size_t>(n);
        return static_cast<std::size_t>(n);
      }
      if (n == 0) {
        ec = boost::asio::error::eof;
        return 0;
      }
      if (errno != EINTR && errno != EAGAIN) {
        ec = ErrorCode(errno, boost::system::system_category());
        return 0;
      }
    }
  }
  template <class Buffers>
  std::size_t read_some(const Buffers& buffers) {
    ErrorCode ec;
    auto n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers, ErrorCode& ec) {
    auto buffer = *boost::asio::buffer_sequence_begin(buffers);
    for (;;) {
      if (!wait(POLLOUT, ec)) return 0;
      ssize_t n = ::send(fd_, buffer.data(), buffer.size(), MSG_NOSIGNAL);
      if (n >= 0) return static_cast<std::size_t>(n);
      if (errno != EINTR && errno != EAGAIN) {
        ec = ErrorCode(errno, boost::system::system_category());
        return 0;
      }
    }
  }
  template <class Buffers>
  std::size_t write_some(const Buffers& buffers) {
    ErrorCode ec;
    auto n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  // Bytes received since the last reset: 0 means the origin sent nothing of this answer.
  [[nodiscard]] std::size_t received() const { return received_; }
  void reset_received() { received_ = 0; }
  // True when an idle pooled connection was closed by the origin (readable: EOF or junk).
  [[nodiscard]] bool closed_while_idle() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

 private:
  bool wait(short events, ErrorCode& ec) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now());
      if (left.count() <= 0) {
        timed_out_ = true;
        ec = boost::asio::error::timed_out;
        return false;
      }
      pollfd p{fd_, events, 0};
      int r = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 60'000)));
      if (r > 0) return true;
      if (r < 0 && errno != EINTR) {
        ec = ErrorCode(errno, boost::system::system_category());
        return false;
      }
    }
  }

  int fd_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timed_out_ = false;
  std::size_t received_ = 0;
};

struct Origin {
  std::string name;  // as configured
  std::string host;
  std::string port;
  std::atomic<bool> up{true};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> failures{0};
  std::mutex idle_mutex;
  std::deque<std::unique_ptr<TimedSocket>> idle;
};

// A non-blocking connect to `origin`, finished within `timeout`; nullptr on failure.
std::unique_ptr<TimedSocket> connect_to(const Origin& origin, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(origin.host.c_str(), origin.port.c_str(), &hints, &found) != 0) return nullptr;
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, &::freeaddrinfo);
  const auto deadline = Clock::now() + timeout;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    auto socket = std::make_unique<TimedSocket>(fd);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) continue;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{fd, POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    int error = 0;
    socklen_t length = sizeof error;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 || error != 0) continue;
    return socket;
  }
  return nullptr;
}

http::Response made_here(int status, std::string_view why) {
  http::Response response = http::Response::text(std::string(http::reason_phrase(status)), status);
  response.headers.set("Cache-Status", "cachekit; detail=" + std::string(why));
  return response;
}

enum class Outcome { kAnswered, kRetry, kTimedOut, kFailed };

using BodyParser = bhttp::response_parser<bhttp::buffer_body>;
constexpr std::size_t kPiece = std::size_t{64} * 1024;  // read from an origin at a time

// The rest of an origin's answer, read while it is sent to the client (proxy.h: streaming).
// Owns the connection, which is closed (never pooled again) when the stream goes.
class OriginStream final : public http::BodyStream {
 public:
  OriginStream(std::unique_ptr<TimedSocket> socket, std::unique_ptr<beast::flat_buffer> buffer,
               std::unique_ptr<BodyParser> parser, std::optional<std::uint64_t> length,
               std::chrono::milliseconds piece_timeout)
      : socket_(std::move(socket)),
        buffer_(std::move(buffer)),
        parser_(std::move(parser)),
        length_(length),
        piece_timeout_(piece_timeout) {}

  bool next(std::string& piece) override {
    piece.clear();
    if (parser_->is_done()) return false;
    piece.resize(kPiece);
    parser_->get().body().data = piece.data();
    parser_->get().body().size = piece.size();
    socket_->set_deadline(Clock::now() + piece_timeout_);
    ErrorCode ec;
    bhttp::read(*socket_, *buffer_, *parser_, ec);
    if (ec == bhttp::error::need_buffer) ec = {};
    piece.resize(kPiece - parser_->get().body().size);
    if (ec) throw std::runtime_error("origin stopped sending the body: " + ec.message());
    return true;
  }
  [[nodiscard]] std::optional<std::uint64_t> length() const noexcept override { return length_; }

 private:
  std::unique_ptr<TimedSocket> socket_;
  std::unique_ptr<beast::flat_buffer> buffer_;
  std::unique_ptr<BodyParser> parser_;
  std::optional<std::uint64_t> length_;
  std::chrono::milliseconds piece_timeout_;
};

}  // namespace

struct Upstreams::Impl {
  UpstreamOptions options;
  std::vector<std::unique_ptr<Origin>> origins;
  std::atomic<std::size_t> next{0};

  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread checker;

  Origin& pick() {
    const std::size_t n = origins.size();
    const std::size_t start = next.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t i = 0; i < n; ++i) {
      Origin& o = *origins[(start + i) % n];
      if (o.up.load(std::memory_order_relaxed)) return o;
    }
    return *origins[start % n];  // all down: try them in turn anyway
  }

  std::unique_ptr<TimedSocket> idle_connection(Origin& origin) {
    std::lock_guard lock(origin.idle_mutex);
    while (!origin.idle.empty()) {
      auto socket = std::move(origin.idle.back());
      origin.idle.pop_back();
      if (!socket->closed_while_idle()) return socket;
    }
    return nullptr;
  }

  void keep(Origin& origin, std::unique_ptr<TimedSocket> socket) {
    std::lock_guard lock(origin.idle_mutex);
    if (origin.idle.size() < options.max_idle_per_origin) origin.idle.push_back(std::move(socket));
  }

  // One exchange on `socket`. `reused`: a failure before any answer byte asks for a retry. An
  // answer larger than stream_above moves the socket into the response's BodyStream.
  Outcome exchange(std::unique_ptr<TimedSocket>& socket, bool reused,
                   bhttp::request<bhttp::string_body>& out, http::Response& answer,
                   bool& keep_alive, Clock::time_point deadline) {
    socket->set_deadline(deadline);
    socket->reset_received();
    ErrorCode ec;
    bhttp::write(*socket, out, ec);
    if (ec) return reused && !socket->timed_out() ? Outcome::kRetry : Outcome::kFailed;
    auto buffer = std::make_unique<beast::flat_buffer>();
    auto parser = std::make_unique<BodyParser>();
    parser->header_limit(64 * 1024);
    parser->body_limit(boost::none);  // a large body is streamed, never held whole
    parser->skip(out.method() == bhttp::verb::head);
    bhttp::read_header(*socket, *buffer, *parser, ec);
    if (ec) {
      if (socket->timed_out()) return Outcome::kTimedOut;
      // Nothing came back on a pooled connection: most likely the origin closed it while idle
      // and never saw the request. Only an idempotent request is sent again, because the origin
      // may also have acted on it and died before answering (RFC 9110 §9.2.2).
      const bool idempotent = out.method() != bhttp::verb::post &&
                              out.method() != bhttp::verb::patch &&
                              out.method() != bhttp::verb::unknown;
      return reused && idempotent && socket->received() == 0 ? Outcome::kRetry : Outcome::kFailed;
    }
    const auto& head = parser->get();
    answer.status = static_cast<int>(head.result_int());
    for (const auto& field : head) {
      auto name = field.name_string();
      auto value = field.value();
      answer.headers.add(std::string_view(name.data(), name.size()),
                         std::string(value.data(), value.size()));
    }
    std::optional<std::uint64_t> length;
    if (auto declared = parser->content_length()) length = *declared;
    std::string body;
    if (length && *length <= options.stream_above) body.reserve(*length);
    while (!parser->is_done()) {
      if (body.size() > options.stream_above || (length && *length > options.stream_above)) {
        answer.body = Bytes(body);
        answer.stream =
            std::make_shared<OriginStream>(std::move(socket), std::move(buffer), std::move(parser),
                                           length, options.response_timeout);
        keep_alive = false;
        return Outcome::kAnswered;
      }
      const std::size_t had = body.size();
      body.resize(had + kPiece);
      parser->get().body().data = body.data() + had;
      parser->get().body().size = kPiece;
      bhttp::read(*socket, *buffer, *parser, ec);
      if (ec == bhttp::error::need_buffer) ec = {};
      body.resize(had + kPiece - parser->get().body().size);
      if (ec) return socket->timed_out() ? Outcome::kTimedOut : Outcome::kFailed;
    }
    keep_alive = parser->get().keep_alive() && buffer->size() == 0;
    answer.body = Bytes(body);  // one copy into shareable storage
    return Outcome::kAnswered;
  }

  http::Response send(const http::Request& request) {
    bhttp::request<bhttp::string_body> out;
    out.version(11);
    out.method_string(request.method);
    out.target(request.target());
    for (const auto& [name, value] : request.headers) out.insert(name, value);
    out.body() = request.body;
    if (!request.body.empty() || request.method == "POST" || request.method == "PUT" ||
        request.method == "PATCH") {
      out.prepare_payload();
    }
    const auto deadline = Clock::now() + options.response_timeout;
    for (std::size_t attempt = 0; attempt < origins.size(); ++attempt) {
      Origin& origin = pick();
      origin.requests.fetch_add(1, std::memory_order_relaxed);
      auto socket = idle_connection(origin);
      bool reused = socket != nullptr;
      for (int tries = 0; tries < 2; ++tries) {
        if (!socket) {
          socket = connect_to(origin, options.connect_timeout);
          reused = false;
        }
        if (!socket) break;
        http::Response answer;
        bool keep_alive = false;
        Outcome outcome = exchange(socket, reused, out, answer, keep_alive, deadline);
        if (outcome == Outcome::kRetry) {
          socket.reset();
          continue;
        }
        if (outcome == Outcome::kAnswered) {
          if (keep_alive && socket) keep(origin, std::move(socket));
          return answer;
        }
        origin.failures.fetch_add(1, std::memory_order_relaxed);
        if (outcome == Outcome::kTimedOut) return made_here(504, "origin-timeout");
        return made_here(502, "origin-broken-answer");
      }
      // No connection: mark it down (the health check brings it back) and try the next one.
      origin.failures.fetch_add(1, std::memory_order_relaxed);
      origin.up.store(false, std::memory_order_relaxed);
      if (Clock::now() >= deadline) return made_here(504, "origin-timeout");
    }
    return made_here(502, "origin-unreachable");
  }

  bool healthy(Origin& origin) {
    auto socket = connect_to(origin, options.connect_timeout);
    if (!socket) return false;
    bhttp::request<bhttp::empty_body> check{bhttp::verb::get, options.health_path, 11};
    check.set(bhttp::field::host, origin.name);
    check.set(bhttp::field::connection, "close");
    check.set(bhttp::field::user_agent, "cachekit-proxy-health-check");
    socket->set_deadline(Clock::now() +
                         std::max(options.connect_timeout, std::chrono::milliseconds(1000)));
    ErrorCode ec;
    bhttp::write(*socket, check, ec);
    if (ec) return false;
    beast::flat_buffer buffer;
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(std::size_t{1024} * 1024);
    bhttp::read(*socket, buffer, parser, ec);
    return !ec && parser.get().result_int() < 500;
  }

  void check_loop() {
    std::unique_lock lock(stop_mutex);
    while (!stopping) {
      stop_cv.wait_for(lock, options.health_interval, [this] { return stopping; });
      if (stopping) break;
      lock.unlock();
      for (auto& origin : origins) {
        bool up = healthy(*origin);
        bool was = origin->up.exchange(up, std::memory_order_relaxed);
        if (was != up) {
          cachekit::detail::logger()->warn("cachekit proxy: origin {} is {}", origin->name,
                                           up ? "up" : "down");
        }
      }
      lock.lock();
    }
  }
};

Upstreams::Upstreams(UpstreamOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.origins.empty()) throw std::invalid_argument("proxy: no upstream origin given");
  for (const auto& name : options.origins) {
    auto colon = name.rfind(':');
    int port = 0;
    const char* end = name.data() + name.size();
    if (colon == std::string::npos || colon == 0 ||
        std::from_chars(name.data() + colon + 1, end, port).ptr != end || port <= 0 ||
        port > 65535) {
      throw std::invalid_argument("proxy: upstream '" + name + "' is not host:port");
    }
    auto origin = std::make_unique<Origin>();
    origin->name = name;
    origin->host = name.substr(0, colon);
    if (origin->host.size() > 2 && origin->host.front() == '[' && origin->host.back() == ']') {
      origin->host = origin->host.substr(1, origin->host.size() - 2);  // [::1]:8000
    }
    origin->port = name.substr(colon + 1);
    impl_->origins.push_back(std::move(origin));
  }
  impl_->options = std::move(options);
  if (!impl_->options.health_path.empty() && impl_->options.health_interval.count() > 0) {
    impl_->checker = std::thread([this] { impl_->check_loop(); });
  }
}

Upstreams::~Upstreams() {
  {
    std::lock_guard lock(impl_->stop_mutex);
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->checker.joinable()) impl_->checker.join();
}

http::Response Upstreams::send(const http::Request& request) { return impl_->send(request); }

std::vector<OriginState> Upstreams::states() const {
  std::vector<OriginState> out;
  for (const auto& o : impl_->origins) {
    out.push_back({o->name, o->up.load(std::memory_order_relaxed),
                   o->requests.load(std::memory_order_relaxed),
                   o->failures.load(std::memory_order_relaxed)});
  }
  return out;
}

std::string Upstreams::metrics_text() const {
  std::string up =
      "# HELP cachekit_proxy_origin_up 1 when the origin is taken to be up.\n"
      "# TYPE cachekit_proxy_origin_up gauge\n";
  std::string requests =
      "# HELP cachekit_proxy_origin_requests_total Requests sent to the origin.\n"
      "# TYPE cachekit_proxy_origin_requests_total counter\n";
  std::string failures =
      "# HELP cachekit_proxy_origin_failures_total Connect failures, timeouts and broken "
      "answers.\n"
      "# TYPE cachekit_proxy_origin_failures_total counter\n";
  for (const auto& s : states()) {
    std::string label = "{origin=\"" + s.origin + "\"} ";
    up += "cachekit_proxy_origin_up" + label + (s.up ? "1\n" : "0\n");
    requests += "cachekit_proxy_origin_requests_total" + label + std::to_string(s.requests) + "\n";
    failures += "cachekit_proxy_origin_failures_total" + label + std::to_string(s.failures) + "\n";
  }
  return up + requests + failures;
}

}  // namespace cachekit::proxy
