// Liveness: a server that restarts closes every pooled connection. A connection idle for
// more than kCheckAfter is checked with a non-blocking MSG_PEEK before it is lent, so the
// first call after a restart gets a fresh connection instead of an error. One returned
// within kCheckAfter is lent unchecked: under load that is nearly every call, and the
// syscall saved is a third of the client's per-call syscalls (a server that died in that
// millisecond fails the call like any call in flight). Nothing is ever retried, because a
// command that may have run (incr) must not run twice.
//
// Circuit breaker (the "error threshold" django-redis users asked for, #314; the logic is
// shared with the PostgreSQL pool in backends/common/breaker_pool.h): a failed connect trips
// it at once, timeouts and I/O errors after failure_threshold in a row. While tripped, calls
// fail in microseconds with kUnavailable and waiters are woken to fail too; after
// retry_interval a single probe call goes through and its outcome closes or re-trips the
// breaker. Idle connections are dropped on a trip: they lead to the same failed server.
#include "backends/redis/pool.h"

#include <fmt/format.h>

#include <optional>
#include <utility>

namespace cachekit::redis_internal {
namespace {

using backend_detail::BreakerPool;
using backend_detail::ReturnVerdict;

constexpr std::chrono::milliseconds kCheckAfter{1};

BreakerPool<Connection>::Pool::Options pool_options(const PoolOptions& options,
                                                    const std::string& where) {
  BreakerPool<Connection>::Pool::Options o;
  o.max_size = options.max_connections;
  o.wait = options.wait;
  o.exhausted_message = fmt::format("redis {}: no free connection within {} ms (pool_size {})",
                                    where, options.wait.count(), options.max_connections);
  o.usable = [](Connection& c, std::chrono::steady_clock::duration idle_for) {
    return idle_for < kCheckAfter || !c.peer_closed();
  };
  return o;
}

BreakerPool<Connection>::Hooks hooks() {
  BreakerPool<Connection>::Hooks h;
  h.returned = [](Connection& c) {
    if (c.broken()) return ReturnVerdict{ReturnVerdict::kFailed, c.error()};
    // Replies were left unread (a caller gave up half-way through a pipeline): the
    // connection is out of step but the server is fine.
    if (c.pending() != 0) return ReturnVerdict{ReturnVerdict::kClose, {}};
    return ReturnVerdict{};
  };
  // An AUTH or SELECT refusal is a configuration error, not an outage: no trip. Any other
  // failed connect means the server is unreachable.
  h.connect_failure = [](const Status& s) -> std::optional<bool> {
    if (s.code() == StatusCode::kInvalidArgument) return std::nullopt;
    return true;
  };
  h.trip_clears_pool = true;
  return h;
}

}  // namespace

Pool::Pool(Endpoint endpoint, PoolOptions options)
    : endpoint_(std::move(endpoint)),
      options_(options),
      where_(endpoint_.describe()),
      pool_(
          [this](std::chrono::steady_clock::time_point) {
            return Connection::open(endpoint_, options_.timeouts, where_);
          },
          pool_options(options_, where_), hooks(),
          backend_detail::CircuitBreakerOptions{options.failure_threshold, options.retry_interval},
          "redis " + where_) {}

PoolCounters Pool::counters() const {
  const auto pool = pool_.pool_counters();
  const auto breaker = pool_.breaker_counters();
  PoolCounters c;
  c.open = pool.open;
  c.idle = pool.idle;
  c.created = pool.created;
  c.discarded = pool.discarded;
  c.waits = pool.waits;
  c.wait_timeouts = pool.wait_timeouts;
  c.failures = breaker.failures;
  c.trips = breaker.trips;
  c.fast_failures = breaker.fast_failures;
  c.down = breaker.down;
  return c;
}

}  // namespace cachekit::redis_internal
