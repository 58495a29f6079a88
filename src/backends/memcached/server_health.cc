// ServerHealth: skipping a memcached server that keeps timing out.
#include "backends/memcached/server_health.h"

#include <algorithm>

namespace cachekit::memcached_internal {

ServerHealth::ServerHealth(std::size_t servers, unsigned failure_limit,
                           std::chrono::milliseconds retry)
    : servers_(std::make_unique<Server[]>(servers)),
      count_(servers),
      failure_limit_(std::max(1u, failure_limit)),
      retry_(retry) {}

bool ServerHealth::admit(std::size_t server, SteadyTime now) noexcept {
  if (server >= count_) return true;
  Server& s = servers_[server];
  std::int64_t until = s.skip_until.load(std::memory_order_acquire);
  std::int64_t now_ns = now.time_since_epoch().count();
  if (until == 0) return true;
  if (now_ns < until) return false;
  // The retry period is over: exactly one caller wins the right to probe, and pushes the next
  // probe a full period away in case this one never reports back.
  return s.skip_until.compare_exchange_strong(until, now_ns + retry_.count(),
                                              std::memory_order_acq_rel);
}

void ServerHealth::record_success(std::size_t server) noexcept {
  if (server >= count_) return;
  Server& s = servers_[server];
  if (s.failures.load(std::memory_order_relaxed) == 0) return;
  if (s.failures.exchange(0, std::memory_order_acq_rel) != 0) {
    s.skip_until.store(0, std::memory_order_release);
    suspects_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void ServerHealth::record_timeout(std::size_t server, SteadyTime now) noexcept {
  if (server >= count_) return;
  Server& s = servers_[server];
  std::uint32_t failures = s.failures.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (failures == 1) suspects_.fetch_add(1, std::memory_order_relaxed);
  if (failures >= failure_limit_) {
    s.skip_until.store(now.time_since_epoch().count() + retry_.count(), std::memory_order_release);
  }
}

}  // namespace cachekit::memcached_internal
