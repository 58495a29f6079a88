#pragma once
// A bounded pool of database connections shared by the threads of one SQL backend.
//
// Why a pool and not a connection per thread: a thread_local connection outlives the backend
// (or dies with a thread the backend never hears about), and an application with 200 request
// threads would open 200 PostgreSQL sessions; Django users hit exactly that (the "max number
// of clients reached" complaints). A pool is bounded, process-wide per backend, and hands a
// connection to one thread at a time, which is what both sqlite3 (opened NOMUTEX) and
// PGconn require.
//
// Idle connections are reused most-recently-used first (warm statement caches); one that went
// stale while idle (still_usable() is false) is closed before it is lent, a broken one is
// closed when it comes back, and a new one is opened on demand through the engine, which is how
// the backend reconnects after a server restart. The pool itself is the shared one
// (backends/common/breaker_pool.h); this layer connects through the engine and says what a
// broken connection means.
//
// A pool for a networked database (PostgreSQL) may have a circuit breaker
// (backends/common/circuit_breaker.h): a connect that fails, or `failure_threshold` calls in a
// row that break their connection (a timeout, a lost server), mark the server down, and calls
// then fail at once until one probe per retry interval finds it again. Without it every call
// against a frozen server waited the whole timeout, and each timed-out connect left an entry
// in the server's listen backlog, so a thawed postmaster forked a backend for each (about 150
// after a 30 s freeze) before serving anyone. Idle connections are kept on a trip: the next
// probe reuses one (no new connect) when it is still usable. SQLite, a local file, has none.
#include <cstddef>
#include <optional>
#include <string>

#include "backends/common/breaker_pool.h"
#include "backends/common/circuit_breaker.h"
#include "backends/sql/engine.h"

namespace cachekit::sql_internal {

class ConnectionPool {
 public:
  // A connection on loan; it goes back to the pool (or is closed, if broken) when destroyed.
  // reused() is true when the connection had served earlier calls (so it may have gone stale).
  using Lease = backend_detail::BreakerPool<Connection>::Lease;

  // `breaker`: none (SQLite), or the breaker's settings; `name` starts its refusals' messages.
  ConnectionPool(Engine& engine, std::size_t max_connections,
                 std::optional<backend_detail::CircuitBreakerOptions> breaker = std::nullopt,
                 std::string name = {});
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // An idle connection, or a new one while fewer than max_connections are open, or waits for
  // one to come back. kUnavailable at once while the breaker marks the server down;
  // kDeadlineExceeded when none is free by `deadline`; the engine's error when connecting fails.
  Result<Lease> acquire(Deadline deadline) { return pool_.acquire(deadline); }

  [[nodiscard]] std::size_t open_connections() const { return pool_.pool_counters().open; }
  // The breaker's counters; all zero without a breaker.
  [[nodiscard]] backend_detail::CircuitBreakerCounters breaker_counters() const {
    return pool_.breaker_counters();
  }
  [[nodiscard]] std::size_t max_connections() const noexcept { return pool_.max_size(); }

 private:
  backend_detail::BreakerPool<Connection> pool_;
};

}  // namespace cachekit::sql_internal
