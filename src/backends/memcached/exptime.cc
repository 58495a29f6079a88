// Expiry arithmetic for the memcached backend.
#include "backends/memcached/exptime.h"

#include <algorithm>
#include <chrono>

namespace cachekit::memcached_internal {

namespace {

std::int64_t ceil_seconds(std::chrono::milliseconds ms) { return (ms.count() + 999) / 1000; }

// Memcached keeps exptimes in 32 bits (the binary protocol's field, the server's rel_time_t):
// an absolute time past 2106 would wrap into the past, so such a far expiry becomes "never".
std::int64_t absolute_or_never(std::int64_t unix_seconds) {
  return unix_seconds > std::int64_t{0xFFFFFFFF} ? 0 : unix_seconds;
}

}  // namespace

std::optional<std::int64_t> exptime_for(Expiry expiry, TimePoint now, TimePoint system_now) {
  if (expiry.is_never()) return 0;
  auto remaining = expiry.time() - now;
  if (remaining <= std::chrono::milliseconds(0)) return std::nullopt;
  std::int64_t seconds = ceil_seconds(remaining) + 1;
  if (seconds <= kMaxRelativeSeconds) return seconds;
  return absolute_or_never(ceil_seconds(system_now.time_since_epoch() + remaining) + 1);
}

std::int64_t exptime_for_remaining(std::int64_t seconds, TimePoint system_now) {
  if (seconds < 0) return 0;
  if (seconds <= kMaxRelativeSeconds) return seconds;
  return absolute_or_never(ceil_seconds(system_now.time_since_epoch()) + seconds);
}

Ttl ttl_from_meta(std::int64_t t) {
  if (t < 0) return Ttl::never();
  return Ttl::after(std::max<std::chrono::milliseconds>(std::chrono::seconds(t - 1),
                                                        std::chrono::milliseconds(1)));
}

}  // namespace cachekit::memcached_internal
