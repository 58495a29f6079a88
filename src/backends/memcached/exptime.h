#pragma once
// Expiry arithmetic for memcached: an absolute Expiry → the exptime the server stores, and the
// meta protocol's remaining lifetime → Ttl.

#include <cstdint>
#include <optional>

#include "cachekit/clock.h"
#include "cachekit/timeout.h"

namespace cachekit::memcached_internal {

// Memcached reads an expiry above 30 days as an absolute unix time.
inline constexpr std::int64_t kMaxRelativeSeconds = std::int64_t{60} * 60 * 24 * 30;

// The exptime memcached should store for `expiry`, judged by `now` (the injected clock):
// 0 for never, relative seconds up to 30 days, otherwise an absolute unix time taken from
// `system_now` (the real clock, which is what the server compares with). nullopt when the
// expiry has already passed.
//
// Memcached's clock ticks once a second and an item dies when the tick reaches its exptime,
// so an exptime of n seconds lives between n-1 and n seconds. Rounding up and adding one
// second makes an entry live at least as long as asked, at most two seconds longer.
std::optional<std::int64_t> exptime_for(Expiry expiry, TimePoint now, TimePoint system_now);

// The exptime that keeps an item's remaining lifetime `seconds` (as the meta protocol's `t`
// flag reports it; -1 is never) when it is written back.
std::int64_t exptime_for_remaining(std::int64_t seconds, TimePoint system_now);

// A remaining lifetime reported by the meta protocol as Ttl. `t` seconds on the server's clock
// mean between t-1 and t seconds of real time; the lower bound is reported (at least 1 ms, as
// the key is live), so exptime_for() of it gives the same exptime back.
Ttl ttl_from_meta(std::int64_t t);

}  // namespace cachekit::memcached_internal
