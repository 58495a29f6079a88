#pragma once
// The Cache's counters (the definition of Cache::Counters), shared by the .cc files of the
// façade.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cachekit/cache.h"

namespace cachekit {

namespace detail {

// Counters bumped on every call from every thread. One shared atomic would bounce its cache
// line between cores on each get, so each counter is striped: a thread adds to its own
// cache-line-sized slot and stats() sums the slots.
constexpr std::size_t kStripes = 16;
enum Counter : std::size_t {
  kHits,
  kMisses,
  kWrites,
  kErrors,
  kKeyWarnings,
  kCollapsedWaits,
  kLeaseWaits,
  kLeaseTakeovers,
  kStaleServedRevalidate,
  kStaleServedError,
  kEarlyRefreshes,
  kRefreshes,
  kRefreshFailures,
  kRefreshesSkipped,
  kCounterCount
};

inline std::size_t stripe_of_this_thread() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local std::size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return stripe;
}

}  // namespace detail

struct Cache::Counters {
  struct alignas(64) Stripe {
    std::array<std::atomic<std::uint64_t>, detail::kCounterCount> values{};
  };
  std::array<Stripe, detail::kStripes> stripes;

  void add(detail::Counter c, std::uint64_t n = 1) noexcept {
    stripes[detail::stripe_of_this_thread()].values[c].fetch_add(n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t sum(detail::Counter c) const noexcept {
    std::uint64_t total = 0;
    for (const auto& s : stripes) total += s.values[c].load(std::memory_order_relaxed);
    return total;
  }
};

}  // namespace cachekit
