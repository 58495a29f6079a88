#pragma once
// Redis Sentinel, client side: asking the sentinels where the primary (and its replicas) are,
// and a background watcher that follows failovers. Internal to the Redis backend.
//
// Discovery asks each sentinel in turn `SENTINEL get-master-addr-by-name <name>`, then checks
// with `ROLE` that the address really is a primary (just after a failover a sentinel may still
// name the demoted one). Every step is bounded by the connect and io timeouts.
//
// The watcher is one thread. It stays subscribed to `+switch-master` on one sentinel (the next
// one when that connection drops or stops answering its PING), and runs a discovery when a
// switch is announced, when a subscription is lost (a switch may be missed meanwhile) and
// when the backend asks (a call to the primary failed or answered READONLY) — at most every
// 100 ms; a failed discovery is retried every 100 ms until one succeeds. It waits in poll() on the
// subscription and an eventfd, so the destructor wakes it at once and joins it: no sleeps, no
// thread left behind.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "backends/redis/connection.h"
#include "backends/redis/url.h"
#include "cachekit/status.h"

namespace cachekit::redis_internal {

struct Discovery {
  Endpoint primary;
  std::vector<Endpoint> replicas;  // empty unless asked for
};

// Asks the sentinels, in order, for the primary (and, with `with_replicas`, the replicas that
// are up and in sync with it). kUnavailable naming every sentinel's answer when none gives a
// primary that says it is one.
Result<Discovery> discover(const SentinelLocation& location, Timeouts timeouts, bool with_replicas);

class SentinelWatcher {
 public:
  // Called on the watcher's thread after each successful discovery (even when nothing changed).
  using Listener = std::function<void(const Discovery&)>;

  // Starts the thread. `listener` must stay valid until the watcher is destroyed.
  SentinelWatcher(SentinelLocation location, Timeouts timeouts, Listener listener);
  ~SentinelWatcher();  // wakes the thread and joins it
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  // Asks for a discovery soon (at most one per 100 ms). Cheap and non-blocking: callers on the
  // request path use it after a failure.
  void request_refresh() noexcept;

  struct Counters {
    std::uint64_t discoveries = 0;         // successful ones
    std::uint64_t failed_discoveries = 0;  // no sentinel gave a usable primary
    std::uint64_t switches_heard = 0;      // +switch-master messages for this master
    std::uint64_t subscriptions = 0;       // (re)subscriptions made
  };
  [[nodiscard]] Counters counters() const;

 private:
  struct Subscription;
  void run();
  void wake() noexcept;
  void subscribe(Subscription& subscription);
  void read_messages(Subscription& subscription);
  void lose(Subscription& subscription);
  // One poll round: waits for the subscription, a wake-up, or the next deadline.
  void wait_and_read(Subscription& subscription, std::chrono::steady_clock::time_point until);
  void refresh_if_due();

  const SentinelLocation location_;
  const Timeouts timeouts_;
  const Listener listener_;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> refresh_wanted_{false};
  std::chrono::steady_clock::time_point last_refresh_{};
  std::chrono::steady_clock::time_point resubscribe_at_{};
  std::size_t next_sentinel_ = 0;
  mutable std::mutex counters_mutex_;
  Counters counters_;
  std::thread thread_;  // last: started once everything above is ready
};

}  // namespace cachekit::redis_internal
