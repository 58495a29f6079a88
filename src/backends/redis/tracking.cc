// The change feed: see tracking.h. The thread owns the connection; the destructor wakes it
// through an eventfd, so stopping never waits out a poll timeout.
#include "backends/redis/tracking.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "core/log.h"

namespace cachekit::redis_internal {
namespace {

constexpr std::string_view kChannel = "__redis__:invalidate";

std::string_view text(const redisReply& reply) { return {reply.str, reply.len}; }

class TrackingFeed final : public ChangeFeed {
 public:
  TrackingFeed(TrackingOptions options, ChangeListener& listener, int wake_fd)
      : options_(std::move(options)),
        where_(options_.endpoint.describe()),
        listener_(listener),
        wake_fd_(wake_fd) {
    listener_.feed_live(false);
    thread_ = std::thread([this] { run(); });
  }
  ~TrackingFeed() override {
    stop_.store(true);
    std::uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
    ::close(wake_fd_);
  }

 private:
  // One warning per outage, not one per failed reconnect.
  void run() {
    bool warned = false;
    while (!stop_.load()) {
      bool was_live = false;
      Status ended = follow(was_live);
      listener_.feed_live(false);
      if (stop_.load()) break;
      if (was_live) warned = false;
      if (!warned) {
        detail::logger()->warn(
            "redis {}: no change feed ({}); local copies are dropped and "
            "bypassed until it is back",
            where_, ended.message());
        warned = true;
      }
      wait(options_.retry);
    }
  }

  // Sleeps `d` unless woken for stopping.
  void wait(std::chrono::milliseconds d) const {
    pollfd fd{wake_fd_, POLLIN, 0};
    (void)::poll(&fd, 1, static_cast<int>(d.count()));
  }

  // One connection's life: subscribe, then deliver until it fails or the feed stops.
  Status follow(bool& was_live) {
    Endpoint target = options_.endpoint;
    if (options_.find_primary) {
      auto found = options_.find_primary();
      if (!found) return unavailable_error(fmt::format("redis {}: no primary known", where_));
      target = std::move(*found);
      where_ = target.describe();  // the connection below holds a view of it
    }
    auto opened = Connection::open(target, options_.timeouts, where_);
    if (!opened.ok()) return opened.status();
    Connection& c = **opened;
    if (Status s = subscribe(c); !s.ok()) return s;
    listener_.feed_live(true);
    was_live = true;
    auto last_heard = std::chrono::steady_clock::now();
    auto last_check = last_heard;
    bool ping_out = false;
    const auto wait = options_.find_primary ? std::min(options_.ping_every, options_.recheck)
                                            : options_.ping_every;
    while (!stop_.load()) {
      auto message = c.next_message(wait, wake_fd_);
      if (!message.ok()) return message.status();
      auto now = std::chrono::steady_clock::now();
      if (options_.find_primary && now - last_check >= options_.recheck) {
        last_check = now;
        auto primary = options_.find_primary();
        if (!primary || primary->describe() != where_) {
          return unavailable_error(fmt::format("redis {}: the primary moved to {}", where_,
                                               primary ? primary->describe() : "none known"));
        }
      }
      if (message->has_value()) {
        last_heard = now;
        ping_out = false;
        deliver(***message);
        continue;
      }
      if (now - last_heard < options_.ping_every) continue;  // woken, or a short poll
      if (ping_out) {
        return Status(StatusCode::kDeadlineExceeded,
                      fmt::format("redis {}: no answer to PING within {} ms", where_,
                                  options_.ping_every.count()));
      }
      c.out().command({"PING"});
      if (Status s = c.send(); !s.ok()) return s;
      ping_out = true;
      last_heard = now;  // the pong is due within one more interval
    }
    return {};
  }

  Status subscribe(Connection& c) {
    c.out().command({"CLIENT", "ID"});
    auto id = round_trip_ok(c);
    if (!id.ok()) return id.status();
    if ((*id)->type != REDIS_REPLY_INTEGER) return internal_error("redis: CLIENT ID: no integer");
    const std::string self = std::to_string((*id)->integer);
    if (options_.key_namespace.empty()) {
      c.out().command({"CLIENT", "TRACKING", "ON", "REDIRECT", self, "BCAST"});
    } else {
      c.out().command({"CLIENT", "TRACKING", "ON", "REDIRECT", self, "BCAST", "PREFIX",
                       options_.key_namespace});
    }
    if (auto on = round_trip_ok(c); !on.ok()) return on.status();
    c.out().command({"SUBSCRIBE", kChannel});
    auto subscribed = round_trip_ok(c);
    if (!subscribed.ok()) return subscribed.status();
    return {};
  }

  static Result<Reply> round_trip_ok(Connection& c) {
    if (Status s = c.send(); !s.ok()) return s;
    return c.read_ok();
  }

  // ["message", channel, payload]: payload nil → everything, an array → those keys.
  // Anything else (the pong ["pong", ""]) only proves the connection alive.
  void deliver(const redisReply& reply) {
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 3) return;
    if (text(*reply.element[0]) != "message") return;
    const redisReply& payload = *reply.element[2];
    if (payload.type == REDIS_REPLY_NIL) {
      listener_.all_changed();
      return;
    }
    if (payload.type != REDIS_REPLY_ARRAY) return;
    for (std::size_t i = 0; i < payload.elements; ++i) {
      std::string_view key = text(*payload.element[i]);
      if (!key.starts_with(options_.key_namespace)) continue;
      listener_.changed(key.substr(options_.key_namespace.size()));
    }
  }

  const TrackingOptions options_;
  std::string where_;  // the server watched (changes with find_primary)
  ChangeListener& listener_;
  const int wake_fd_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<ChangeFeed>> start_tracking(TrackingOptions options,
                                                   ChangeListener& listener) {
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) return internal_error("redis: eventfd failed for the change feed");
  return std::unique_ptr<ChangeFeed>(new TrackingFeed(std::move(options), listener, wake));
}

}  // namespace cachekit::redis_internal
