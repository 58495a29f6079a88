// incr, ttl and stats for the memcached backend, and the factory.
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

#include "backends/memcached/backend.h"

namespace cachekit::memcached {

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

// `mg <key> t` — the classic protocols have no way to ask for a remaining lifetime.
Result<Ttl> MemcachedBackend::ttl(std::string_view key) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  std::size_t server = server_of(m, key);
  if (server == kNoServer) return unavailable_error("memcached: no live server for ttl");
  auto item = meta_.get(server, key, /*with_value=*/false);
  if (!item.ok()) return meta_failure(server, item.status());
  observe(server, false);
  if (!item->has_value()) return Ttl::missing();
  return ttl_from_meta((*item)->ttl);
}

namespace {

constexpr std::string_view kShownStats[] = {
    "version",        "uptime",   "curr_items", "total_items", "bytes",
    "limit_maxbytes", "get_hits", "get_misses", "evictions",   "curr_connections"};
constexpr std::string_view kSummedStats[] = {"curr_items", "bytes", "get_hits", "get_misses",
                                             "evictions"};

// Appends one server's interesting stats as "<prefix><name>" and adds to the totals.
void append_server_stats(const std::string& prefix,
                         const std::vector<std::pair<std::string, std::string>>& stats,
                         StatPairs& out, std::vector<std::uint64_t>& totals) {
  for (const auto& [name, value] : stats) {
    if (std::find(std::begin(kShownStats), std::end(kShownStats), name) == std::end(kShownStats)) {
      continue;
    }
    out.emplace_back(prefix + name, value);
    auto summed = std::find(std::begin(kSummedStats), std::end(kSummedStats), name);
    if (summed != std::end(kSummedStats)) {
      totals[static_cast<std::size_t>(summed - std::begin(kSummedStats))] +=
          std::strtoull(value.c_str(), nullptr, 10);
    }
  }
}

}  // namespace

// Per server "<address>.<stat>" for the counters an operator looks at first, then the totals.
// A server that cannot be reached is listed as such instead of failing the whole call. The
// stats come over the side channel: libmemcached's memcached_stat_execute gives up on every
// server as soon as one of them is down.
Result<StatPairs> MemcachedBackend::stats() {
  StatPairs out{{"servers", std::to_string(servers_.size())}};
  std::vector<std::uint64_t> totals(std::size(kSummedStats), 0);
  std::size_t answered = 0;
  Status last = unavailable_error("no memcached server answered");
  for (std::size_t s = 0; s < servers_.size(); ++s) {
    std::string prefix = servers_[s].display() + ".";
    if (!health_.admit(s, std::chrono::steady_clock::now())) {
      out.emplace_back(prefix + "error", "skipped: not answering");
      continue;
    }
    auto server_stats = meta_.stats(s);
    if (!server_stats.ok()) {
      last = meta_failure(s, server_stats.status());
      out.emplace_back(prefix + "error", last.to_string());
      continue;
    }
    observe(s, false);
    ++answered;
    append_server_stats(prefix, *server_stats, out, totals);
  }
  if (answered == 0) return last;
  for (std::size_t i = 0; i < std::size(kSummedStats); ++i) {
    out.emplace_back(std::string(kSummedStats[i]), std::to_string(totals[i]));
  }
  return out;
}

}  // namespace cachekit::memcached

// ---- the factory ----

namespace cachekit {

namespace {

Status behave(memcached_st* m, memcached_behavior_t flag, std::uint64_t value, const char* name) {
  memcached_return_t rc = memcached_behavior_set(m, flag, value);
  if (rc == MEMCACHED_SUCCESS) return {};
  return invalid_argument_error(
      fmt::format("libmemcached refused {}={}: {}", name, value, memcached_strerror(m, rc)));
}

Status check_options(const MemcachedOptions& o) {
  if (o.servers.empty()) return invalid_argument_error("the memcached backend needs a server");
  if (o.connect_timeout.count() <= 0 || o.timeout.count() <= 0) {
    return invalid_argument_error("memcached timeouts must be positive");
  }
  if (o.pool_size == 0) return invalid_argument_error("pool_size must be at least 1");
  if (o.pool_wait.count() < 0) return invalid_argument_error("pool_wait must not be negative");
  if (o.server_failure_limit == 0) {
    return invalid_argument_error("server_failure_limit must be at least 1");
  }
  if (o.retry_timeout.count() <= 0) return invalid_argument_error("retry_timeout must be ≥ 1 s");
  return {};
}

// The master handle every pooled handle is cloned from.
Status configure(memcached_st* m, const MemcachedOptions& o,
                 const std::vector<memcached::ServerAddress>& servers) {
  auto retry = static_cast<std::uint64_t>(o.retry_timeout.count());
  const std::pair<memcached_behavior_t, std::uint64_t> behaviours[] = {
      {MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1},
      {MEMCACHED_BEHAVIOR_KETAMA, 1},
      {MEMCACHED_BEHAVIOR_TCP_NODELAY, 1},
      {MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, static_cast<std::uint64_t>(o.connect_timeout.count())},
      {MEMCACHED_BEHAVIOR_POLL_TIMEOUT, static_cast<std::uint64_t>(o.timeout.count())},
      {MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, o.server_failure_limit},
      {MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, retry},
      {MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, retry},
      {MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, o.remove_failed_servers ? 1u : 0u},
  };
  for (const auto& [flag, value] : behaviours) {
    if (Status s = behave(m, flag, value, "behavior"); !s.ok()) return s;
  }
  for (const auto& server : servers) {
    memcached_return_t rc = server.unix_socket
                                ? memcached_server_add_unix_socket(m, server.host.c_str())
                                : memcached_server_add(m, server.host.c_str(), server.port);
    if (rc != MEMCACHED_SUCCESS) {
      return invalid_argument_error(fmt::format("cannot add memcached server {}: {}",
                                                server.display(), memcached_strerror(m, rc)));
    }
  }
  return {};
}

}  // namespace

Result<std::shared_ptr<Backend>> make_memcached_backend(const MemcachedOptions& options) {
  if (Status s = check_options(options); !s.ok()) return s;
  std::vector<memcached::ServerAddress> servers;
  for (const auto& text : options.servers) {
    auto address = memcached::parse_server(text);
    if (!address.ok()) return address.status();
    servers.push_back(std::move(*address));
  }
  memcached_st* master = memcached_create(nullptr);
  if (master == nullptr) return internal_error("memcached_create failed");
  if (Status s = configure(master, options, servers); !s.ok()) {
    memcached_free(master);
    return s;
  }
  return std::shared_ptr<Backend>(
      std::make_shared<memcached::MemcachedBackend>(options, std::move(servers), master));
}

}  // namespace cachekit
