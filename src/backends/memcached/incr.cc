// incr for the memcached backend.
//
// Signed incr. Memcached's incr/decr work on unsigned 64-bit decimals: decr clamps at 0, incr
// wraps at 2^64, a stored "-5" is "non-numeric", and there are no negative deltas. Django only
// routes a negative delta to decr and inherits the rest. cachekit's contract is signed 64-bit
// arithmetic with kOutOfRange on overflow, kFailedPrecondition on a non-integer, the expiry kept
// and the stored form plain decimal (so other clients can read it and use their own incr). So:
//  - every delta first goes to the native incr as its two's-complement bit pattern: adding
//    2^64 − d modulo 2^64 subtracts d, so a decrement is the same one round trip, atomic and
//    keeping the expiry, and cannot be starved by other clients' increments. A result at most
//    INT64_MAX is exact. A larger one means the true result left the non-negative range: an
//    increment past INT64_MAX (undone and reported as kOutOfRange) or a decrement below zero
//    (undone, then done by the CAS loop below, which can store a negative number). The undo is
//    a native incr by the opposite amount, exact modulo 2^64 whatever landed in between;
//    until it lands, another reader can briefly see the out-of-range number.
//  - a result below zero, and any value the native incr refuses (negative, non-numeric), go
//    through a CAS loop on the meta protocol: `mg k v c t` reads value, CAS and remaining TTL
//    atomically; the new value is written with `ms k C<cas> T<ttl>`, which fails if anything
//    changed in between (then the loop reads again). The TTL goes back exactly as read, in the
//    server's own seconds. A native decr could not be used: once it clamps at 0 the old value
//    is lost. A lost race is not an error: the loop keeps trying for up to the io timeout,
//    with a randomised pause that grows to 1 ms so that two of our own loops on one key stop
//    colliding in step.
// Values that another client decremented natively can carry trailing spaces (memcached pads a
// shrinking number in place); they are accepted.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <random>
#include <thread>

#include "backends/memcached/memcached_backend.h"

namespace cachekit::memcached_internal {

namespace {
constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());

// The pause after the `lost`-th lost race in a row: uniform in [0, min(2^lost, 1000)] µs.
void pause_after_lost_race(int lost) {
  thread_local std::minstd_rand gen{std::random_device{}()};
  const int cap = std::min(1000, 1 << std::min(lost, 10));
  std::this_thread::sleep_for(
      std::chrono::microseconds(std::uniform_int_distribution<int>(0, cap)(gen)));
}
}  // namespace

Result<std::int64_t> MemcachedBackend::incr_native(std::size_t server, std::string_view key,
                                                   std::int64_t delta, bool& fall_back) {
  fall_back = false;
  const auto amount = static_cast<std::uint64_t>(delta);  // modulo 2^64, adding it adds delta
  auto added = meta_.add(server, key, amount);
  if (added.code() == StatusCode::kFailedPrecondition) {  // negative or not a number
    fall_back = true;
    return added.status();
  }
  if (!added.ok()) return meta_failure(server, added.status());
  observe(server, false);
  if (!added->has_value()) return not_found_error("Key '" + std::string(key) + "' not found");
  if (**added <= kInt64Max) return static_cast<std::int64_t>(**added);
  // Out of the non-negative range: put it back (exact modulo 2^64 whatever landed meanwhile).
  auto undone = meta_.add(server, key, 0 - amount);
  if (!undone.ok()) return meta_failure(server, undone.status());
  if (delta >= 0) return Status(StatusCode::kOutOfRange, "incr would overflow a 64-bit integer");
  fall_back = true;  // the result is negative: only the CAS loop can store it
  return Status(StatusCode::kFailedPrecondition, "below zero");
}

Status MemcachedBackend::meta_failure(std::size_t server, const Status& status) {
  observe(server, status.code() == StatusCode::kDeadlineExceeded);
  return status;
}

Result<std::int64_t> MemcachedBackend::incr_by_cas(std::size_t server, std::string_view key,
                                                   std::int64_t delta) {
  const auto give_up_at = std::chrono::steady_clock::now() + cas_patience_;
  int lost = 0;
  for (;;) {
    auto item = meta_.get(server, key, /*with_value=*/true);
    if (!item.ok()) return meta_failure(server, item.status());
    observe(server, false);
    if (!item->has_value()) return not_found_error("Key '" + std::string(key) + "' not found");
    std::string_view text = (*item)->value;
    while (text.ends_with(' ')) text.remove_suffix(1);
    auto current = parse_decimal(text);
    if (!current) {
      return Status(StatusCode::kFailedPrecondition,
                    "the value under '" + std::string(key) + "' is not a decimal integer");
    }
    auto updated = checked_add(*current, delta);
    if (!updated.ok()) return updated.status();
    std::string written = std::to_string(*updated);
    std::int64_t exptime = exptime_for_remaining((*item)->ttl, SystemClock::instance().now());
    auto stored = meta_.store_if_unchanged(server, key, written, (*item)->cas, exptime);
    if (!stored.ok()) return meta_failure(server, stored.status());
    if (*stored == MetaClient::StoreOutcome::kStored) return *updated;
    // kChanged: someone wrote in between, read again. kMissing: the next read reports it.
    ++lost;
    if (std::chrono::steady_clock::now() >= give_up_at) break;
    pause_after_lost_race(lost);
  }
  return unavailable_error(fmt::format("incr on '{}' lost {} races in a row over {} ms; try again",
                                       key, lost, cas_patience_.count()));
}

Result<std::int64_t> MemcachedBackend::incr(std::string_view key, std::int64_t delta) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  std::size_t server = server_of(m, key);
  if (server == kNoServer) return unavailable_error("memcached: no live server for incr");
  bool fall_back = false;
  auto r = incr_native(server, key, delta, fall_back);
  if (!fall_back) return r;
  return incr_by_cas(server, key, delta);
}

}  // namespace cachekit::memcached_internal
