// incr for the memcached backend.
//
// Signed incr. Memcached's incr/decr work on unsigned 64-bit decimals: decr clamps at 0, incr
// wraps at 2^64, a stored "-5" is "non-numeric", and there are no negative deltas. Django only
// routes a negative delta to decr and inherits the rest. cachekit's contract is signed 64-bit
// arithmetic with kOutOfRange on overflow, kFailedPrecondition on a non-integer, the expiry kept
// and the stored form plain decimal (so other clients can read it and use their own incr). So:
//  - delta ≥ 0 uses the native incr: one round trip, atomic, keeps the expiry. The only result
//    it can get wrong is one above INT64_MAX; that is undone with a native decr by the same
//    delta (exact, since the value is then ≥ delta) and reported as kOutOfRange. Between the two
//    commands another reader can briefly see the out-of-range number.
//  - a negative delta, and any value the native incr refuses (negative, non-numeric), go
//    through a CAS loop on the meta protocol: `mg k v c t` reads value, CAS and remaining TTL
//    atomically; the new value is written with `ms k C<cas> T<ttl>`, which fails if anything
//    changed in between (then the loop reads again). The TTL goes back exactly as read, in the
//    server's own seconds. A native decr could not be used: once it clamps at 0 the old value
//    is lost.
// Values that another client decremented natively can carry trailing spaces (memcached pads a
// shrinking number in place); they are accepted.
#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "backends/memcached/memcached_backend.h"

namespace cachekit::memcached_internal {

namespace {
constexpr int kMaxCasAttempts = 64;
constexpr auto kInt64Max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
}  // namespace

Result<std::int64_t> MemcachedBackend::incr_native(memcached_st* m, std::string_view key,
                                                   std::int64_t delta, bool& fall_back) {
  fall_back = false;
  std::uint64_t value = 0;
  auto amount = static_cast<std::uint64_t>(delta);
  memcached_return_t rc =
      call(m, key, [&] { return memcached_increment(m, key.data(), key.size(), amount, &value); });
  if (rc == MEMCACHED_SUCCESS && value <= kInt64Max) return static_cast<std::int64_t>(value);
  if (rc == MEMCACHED_SUCCESS) {
    (void)call(m, key,
               [&] { return memcached_decrement(m, key.data(), key.size(), amount, &value); });
    return Status(StatusCode::kOutOfRange, "incr would overflow a 64-bit integer");
  }
  if (rc == MEMCACHED_NOTFOUND) return not_found_error("Key '" + std::string(key) + "' not found");
  // "Non-numeric value" arrives as CLIENT_ERROR (text) or UNKNOWN_READ_FAILURE (binary status
  // 6, which libmemcached does not map); the CAS path decides what the value really is.
  if (rc == MEMCACHED_CLIENT_ERROR || rc == MEMCACHED_UNKNOWN_READ_FAILURE) {
    fall_back = true;
    return Status(StatusCode::kFailedPrecondition, "not an unsigned integer");
  }
  return failure(m, rc, "incr", key);
}

Status MemcachedBackend::meta_failure(std::size_t server, const Status& status) {
  observe(server, status.code() == StatusCode::kDeadlineExceeded);
  return status;
}

Result<std::int64_t> MemcachedBackend::incr_by_cas(memcached_st* m, std::string_view key,
                                                   std::int64_t delta) {
  std::size_t server = server_of(m, key);
  if (server == kNoServer) return unavailable_error("memcached: no live server for incr");
  for (int attempt = 0; attempt < kMaxCasAttempts; ++attempt) {
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
  }
  return unavailable_error(
      fmt::format("incr on '{}' lost {} races in a row; try again", key, kMaxCasAttempts));
}

Result<std::int64_t> MemcachedBackend::incr(std::string_view key, std::int64_t delta) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  if (delta >= 0) {
    bool fall_back = false;
    auto r = incr_native(m, key, delta, fall_back);
    if (!fall_back) return r;
  }
  return incr_by_cas(m, key, delta);
}

}  // namespace cachekit::memcached_internal
