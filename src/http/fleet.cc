// One handler call per page miss across the processes that share a store (nginx's
// proxy_cache_lock, fleet-wide). In a process the Coalescer already makes one leader per page;
// on a store that outlives the process (Redis, memcached, SQL) that leader also takes a
// cachekit::Lease named after the page. The holder runs the handler and releases after
// storing. A leader that finds the lease held polls the store with backoff for the page and
// serves it (`collapsed`); it takes the lease itself when the holder gives it up without
// storing (its handler failed) or the claim expires (the holder died: the lease lives
// coalesce_wait), and runs the handler itself when the wait runs out or the store fails —
// fail open: a broken store makes the miss slower, never wrong.

#include <algorithm>
#include <chrono>
#include <thread>

#include "http/page_cache_impl.h"

namespace cachekit::http {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kFirstPoll{5};
constexpr milliseconds kMaxPoll{100};

}  // namespace

PageCache::Impl::FleetTurn PageCache::Impl::take_fleet_turn(const Request& request,
                                                            const Lookup& found) const {
  FleetTurn turn;
  const std::string name = lease_name("miss", found, request);
  const milliseconds ttl = std::max(options.coalesce_wait, milliseconds(1));
  const auto deadline = std::chrono::steady_clock::now() + options.coalesce_wait;
  milliseconds pause = kFirstPoll;
  for (;;) {
    auto acquired = Lease::try_acquire(cache(), name, ttl);
    if (!acquired) return turn;  // the store failed: run the handler here
    if (acquired.value().held()) {
      turn.lease.emplace(std::move(acquired).value());
      return turn;
    }
    if (std::chrono::steady_clock::now() >= deadline) return turn;  // waited enough
    // Polling the store is the only way to hear from another process; the pause grows so a
    // slow handler elsewhere costs a few reads, not a storm of them.
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, kMaxPoll);
    Lookup again = lookup(request, found.fwd);
    if (again.hit) {
      counters.fleet_collapsed.fetch_add(1, std::memory_order_relaxed);
      turn.hit = std::move(again.hit);
      return turn;
    }
  }
}

}  // namespace cachekit::http
