// Sentinel discovery and the failover watcher (see sentinel.h).
//
// The watcher's subscription is a plain hiredis context driven by hand: poll() says when the
// socket is readable, redisBufferRead() reads what arrived (never blocking then), and
// redisGetReplyFromReader() hands out the complete messages. A sentinel that stops answering
// (SIGSTOP, a dead host behind a live TCP stack) is noticed by a PING once a second left
// unanswered; the watcher then moves on to the next sentinel.
#include "backends/redis/sentinel.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <vector>

namespace cachekit::redis_internal {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kRefreshGap = 100ms;        // at most one discovery per gap
constexpr auto kPingEvery = 1s;            // on the subscription; unanswered by the next: gone
constexpr auto kResubscribeAfter = 500ms;  // after every sentinel refused the subscription

std::string address(std::string_view host, int port) {
  return host.find(':') != std::string_view::npos ? fmt::format("[{}]:{}", host, port)
                                                  : fmt::format("{}:{}", host, port);
}

Status unexpected_reply_error(std::string_view where, std::string_view command) {
  return unavailable_error(fmt::format("redis {}: unexpected reply to {}", where, command));
}

std::string_view text(const redisReply& r) {
  return r.str != nullptr ? std::string_view(r.str, r.len) : std::string_view();
}

std::optional<int> to_port(std::string_view s) {
  int value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (error != std::errc() || end != s.data() + s.size() || value < 1 || value > 65535) return {};
  return value;
}

// One command on a fresh connection to `endpoint`; the reply must not be an error reply.
Result<Reply> ask(const Endpoint& endpoint, Timeouts timeouts, const std::string& where,
                  std::initializer_list<std::string_view> command) {
  auto connection = Connection::open(endpoint, timeouts, where);
  if (!connection.ok()) return connection.status();
  (*connection)->out().command(command);
  if (Status s = (*connection)->send(); !s.ok()) return s;
  return (*connection)->read_ok();
}

Endpoint sentinel_endpoint(const SentinelLocation::Address& sentinel) {
  Endpoint out;
  out.host = sentinel.host;
  out.port = sentinel.port;
  return out;
}

Result<Endpoint> primary_named_by(const SentinelLocation& location,
                                  const SentinelLocation::Address& sentinel, Timeouts timeouts) {
  const std::string where = "sentinel " + address(sentinel.host, sentinel.port);
  auto reply = ask(sentinel_endpoint(sentinel), timeouts, where,
                   {"SENTINEL", "get-master-addr-by-name", location.master_name});
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  if (r.type == REDIS_REPLY_NIL) {
    return unavailable_error(
        fmt::format("redis {}: no master named \"{}\"", where, location.master_name));
  }
  std::optional<int> port;
  if (r.type == REDIS_REPLY_ARRAY && r.elements == 2) port = to_port(text(*r.element[1]));
  if (!port) return unexpected_reply_error(where, "SENTINEL get-master-addr-by-name");
  return location.endpoint(std::string(text(*r.element[0])), *port);
}

// ROLE's first element is "master" on a primary, "slave" on a replica.
Status check_is_primary(const Endpoint& endpoint, Timeouts timeouts) {
  const std::string where = endpoint.describe();
  auto reply = ask(endpoint, timeouts, where, {"ROLE"});
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  if (r.type != REDIS_REPLY_ARRAY || r.elements == 0) return unexpected_reply_error(where, "ROLE");
  if (text(*r.element[0]) != "master") {
    return unavailable_error(fmt::format("redis {}: named the primary, but ROLE says \"{}\"", where,
                                         text(*r.element[0])));
  }
  return {};
}

// The value of `name` in a flat [name, value, ...] array.
std::string_view field(const redisReply& r, std::string_view name) {
  for (std::size_t i = 0; i + 1 < r.elements; i += 2) {
    if (text(*r.element[i]) == name) return text(*r.element[i + 1]);
  }
  return {};
}

// The replicas a sentinel knows that are up and linked to the primary.
Result<std::vector<Endpoint>> replicas_named_by(const SentinelLocation& location,
                                                const SentinelLocation::Address& sentinel,
                                                Timeouts timeouts) {
  const std::string where = "sentinel " + address(sentinel.host, sentinel.port);
  auto reply = ask(sentinel_endpoint(sentinel), timeouts, where,
                   {"SENTINEL", "replicas", location.master_name});
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_ARRAY) {
    return unexpected_reply_error(where, "SENTINEL replicas");
  }
  std::vector<Endpoint> out;
  for (std::size_t i = 0; i < (*reply)->elements; ++i) {
    const redisReply& replica = *(*reply)->element[i];
    if (replica.type != REDIS_REPLY_ARRAY) continue;
    std::string_view flags = field(replica, "flags");
    bool down = flags.find("down") != std::string_view::npos ||
                flags.find("disconnected") != std::string_view::npos;
    auto port = to_port(field(replica, "port"));
    if (down || !port || field(replica, "master-link-status") != "ok") continue;
    out.push_back(location.endpoint(std::string(field(replica, "ip")), *port));
  }
  return out;
}

}  // namespace

Result<Discovery> discover(const SentinelLocation& location, Timeouts timeouts,
                           bool with_replicas) {
  std::string problems;
  for (const auto& sentinel : location.sentinels) {
    auto primary = primary_named_by(location, sentinel, timeouts);
    Status checked = primary.ok() ? check_is_primary(*primary, timeouts) : primary.status();
    if (!checked.ok()) {
      problems += (problems.empty() ? "" : "; ") + checked.message();
      continue;
    }
    Discovery found{std::move(primary).value(), {}};
    if (with_replicas) {
      auto replicas = replicas_named_by(location, sentinel, timeouts);
      if (replicas.ok()) found.replicas = std::move(replicas).value();
    }
    return found;
  }
  return unavailable_error(
      fmt::format("redis {}: no primary found: {}", location.describe(), problems));
}

// ---- the watcher ----

// The subscription to +switch-master on one sentinel.
struct SentinelWatcher::Subscription {
  redisContext* context = nullptr;
  bool confirmed = false;  // the sentinel answered SUBSCRIBE
  bool awaiting_pong = false;
  SteadyClock::time_point next_ping{};
  ~Subscription() { close(); }
  void close() {
    if (context != nullptr) redisFree(context);
    context = nullptr;
    confirmed = false;
    awaiting_pong = false;
  }
  [[nodiscard]] bool open() const { return context != nullptr; }
  // Appends a command and writes it out; false (and closed) on failure.
  bool send(std::initializer_list<const char*> args) {
    std::vector<const char*> argv(args);
    if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(), nullptr) !=
        REDIS_OK) {
      close();
      return false;
    }
    int done = 0;
    while (done == 0) {
      if (redisBufferWrite(context, &done) != REDIS_OK) {
        close();
        return false;
      }
    }
    return true;
  }
};

SentinelWatcher::SentinelWatcher(SentinelLocation location, Timeouts timeouts, Listener listener)
    : location_(std::move(location)), timeouts_(timeouts), listener_(std::move(listener)) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd: " + std::string(std::strerror(errno)));
  thread_ = std::thread([this] { run(); });
}

SentinelWatcher::~SentinelWatcher() {
  stopping_.store(true);
  wake();
  thread_.join();
  ::close(wake_fd_);
}

void SentinelWatcher::wake() noexcept {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof one);
}

void SentinelWatcher::request_refresh() noexcept {
  if (!refresh_wanted_.exchange(true)) wake();
}

SentinelWatcher::Counters SentinelWatcher::counters() const {
  std::lock_guard lock(counters_mutex_);
  return counters_;
}

void SentinelWatcher::run() {
  Subscription subscription;
  while (!stopping_.load()) {
    if (!subscription.open() && SteadyClock::now() >= resubscribe_at_) {
      subscribe(subscription);
      // When this one is refused or lost unconfirmed; a confirmed one lost retries at once.
      resubscribe_at_ = SteadyClock::now() + kResubscribeAfter;
    }
    refresh_if_due();
    auto until = SteadyClock::now() + kPingEvery;
    if (!subscription.open()) until = std::min(until, resubscribe_at_);
    if (refresh_wanted_.load()) until = std::min(until, last_refresh_ + kRefreshGap);
    wait_and_read(subscription, until);
  }
}

// Tries each sentinel once, starting with the next one, until one takes the SUBSCRIBE (its
// answer is read with the messages).
void SentinelWatcher::subscribe(Subscription& subscription) {
  for (std::size_t tries = 0; tries < location_.sentinels.size() && !stopping_.load(); ++tries) {
    const auto& sentinel = location_.sentinels[next_sentinel_ % location_.sentinels.size()];
    ++next_sentinel_;
    timeval tv{static_cast<time_t>(timeouts_.connect.count() / 1000),
               static_cast<suseconds_t>(timeouts_.connect.count() % 1000 * 1000)};
    subscription.context = redisConnectWithTimeout(sentinel.host.c_str(), sentinel.port, tv);
    if (subscription.context == nullptr || subscription.context->err != 0) {
      subscription.close();
      continue;
    }
    if (!subscription.send({"SUBSCRIBE", "+switch-master"})) continue;
    subscription.next_ping = SteadyClock::now() + kPingEvery;
    return;
  }
}

void SentinelWatcher::wait_and_read(Subscription& subscription, SteadyClock::time_point until) {
  pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {-1, POLLIN, 0}};
  if (subscription.open()) fds[1].fd = subscription.context->fd;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(until - SteadyClock::now());
  int ready = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(0, left.count())));
  if (ready < 0) return;  // EINTR: the loop comes back
  if ((fds[0].revents & POLLIN) != 0) {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake_fd_, &count, sizeof count);
  }
  if (subscription.open() && fds[1].revents != 0) read_messages(subscription);
  if (subscription.open() && SteadyClock::now() >= subscription.next_ping) {
    // The previous PING never came back: this sentinel is gone or frozen.
    if (subscription.awaiting_pong || !subscription.send({"PING"})) {
      lose(subscription);
      return;
    }
    subscription.awaiting_pong = true;
    subscription.next_ping = SteadyClock::now() + kPingEvery;
  }
}

// A subscription that worked and is gone: a switch may have been announced meanwhile.
void SentinelWatcher::lose(Subscription& subscription) {
  if (subscription.confirmed) {
    refresh_wanted_.store(true);
    resubscribe_at_ = SteadyClock::now();
  }
  subscription.close();
}

// Reads what arrived. A sentinel that refuses SUBSCRIBE (an ACL) is dropped; the backend
// then learns of failovers from its failing calls only.
void SentinelWatcher::read_messages(Subscription& subscription) {
  if (redisBufferRead(subscription.context) != REDIS_OK) return lose(subscription);
  for (;;) {
    void* raw = nullptr;
    if (redisGetReplyFromReader(subscription.context, &raw) != REDIS_OK) return lose(subscription);
    if (raw == nullptr) return;
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR) return lose(subscription);
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 2) continue;
    std::string_view kind = text(*reply->element[0]);
    if (kind == "pong") subscription.awaiting_pong = false;
    if (kind == "subscribe" && !subscription.confirmed) {
      subscription.confirmed = true;
      std::lock_guard lock(counters_mutex_);
      ++counters_.subscriptions;
    }
    if (kind != "message" || reply->elements != 3) continue;
    // "<master-name> <old-ip> <old-port> <new-ip> <new-port>"
    std::string_view payload = text(*reply->element[2]);
    if (payload.substr(0, payload.find(' ')) != location_.master_name) continue;
    {
      std::lock_guard lock(counters_mutex_);
      ++counters_.switches_heard;
    }
    refresh_wanted_.store(true);
  }
}

// A discovery when one is wanted and the last is at least kRefreshGap old. A failed one is
// tried again after the gap: a failover in progress answers with the old, dead primary.
void SentinelWatcher::refresh_if_due() {
  if (!refresh_wanted_.load() || SteadyClock::now() < last_refresh_ + kRefreshGap) return;
  refresh_wanted_.store(false);
  last_refresh_ = SteadyClock::now();
  auto found = discover(location_, timeouts_, location_.read_from_replicas);
  {
    std::lock_guard lock(counters_mutex_);
    ++(found.ok() ? counters_.discoveries : counters_.failed_discoveries);
  }
  if (!found.ok()) {
    refresh_wanted_.store(true);
    return;
  }
  listener_(*found);
}

}  // namespace cachekit::redis_internal
