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
// Idle connections are reused most-recently-used first (warm statement caches); a broken one
// is closed when it comes back, and a new one is opened on demand, which is how the backend
// reconnects after a server restart.
//
// The last connection returned waits in a one-slot "hot" cell that a caller takes with one
// atomic exchange, without the mutex: a single-threaded caller (and the common case of few
// threads) never locks. Waiters are the subtle part: a thread about to sleep registers in
// `waiters_` and then looks at the hot cell again, while a returning thread fills the cell and
// then looks at `waiters_`; with sequentially consistent atomics at least one of them sees the
// other, so a connection can never sit in the cell while someone sleeps waiting for one.
//
// A pool for a networked database (PostgreSQL) may have a circuit breaker
// (backends/common/circuit_breaker.h): a connect that fails, or `failure_threshold` calls in a
// row that break their connection (a timeout, a lost server), mark the server down, and calls
// then fail at once until one probe per retry interval finds it again. Without it every call
// against a frozen server waited the whole timeout, and each timed-out connect left an entry
// in the server's listen backlog, so a thawed postmaster forked a backend for each (about 150
// after a 30 s freeze) before serving anyone. Idle connections are kept on a trip: the next
// probe reuses one (no new connect) when it is still usable. SQLite, a local file, has none.
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "backends/common/circuit_breaker.h"
#include "backends/sql/engine.h"

namespace cachekit::sql_internal {

class ConnectionPool {
 public:
  // `breaker`: none (SQLite), or the breaker's settings; `name` starts its refusals' messages.
  ConnectionPool(Engine& engine, std::size_t max_connections,
                 std::optional<backend_detail::CircuitBreakerOptions> breaker = std::nullopt,
                 std::string name = {})
      : engine_(engine), max_(max_connections) {
    if (breaker) breaker_.emplace(std::move(name), *breaker);
  }
  ~ConnectionPool() { delete hot_.exchange(nullptr); }
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection on loan; it goes back to the pool (or is closed, if broken) when destroyed.
  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> c, bool reused, bool probe) noexcept
        : pool_(pool), connection_(std::move(c)), reused_(reused), probe_(probe) {}
    Lease(Lease&& o) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_) pool_->give_back(std::move(connection_), probe_);
    }
    Connection* operator->() const noexcept { return connection_.get(); }
    // True when the connection had served earlier calls (so it may have gone stale).
    [[nodiscard]] bool reused() const noexcept { return reused_; }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> connection_;
    bool reused_;
    bool probe_;  // the breaker's probe: its outcome closes or re-arms the breaker
  };

  // An idle connection, or a new one while fewer than max_connections are open, or waits for
  // one to come back. kUnavailable at once while the breaker marks the server down;
  // kDeadlineExceeded when none is free by `deadline`; the engine's error when connecting fails.
  Result<Lease> acquire(Deadline deadline);

  [[nodiscard]] std::size_t open_connections() const;
  // The breaker's counters; all zero without a breaker.
  [[nodiscard]] backend_detail::CircuitBreakerCounters breaker_counters() const {
    return breaker_ ? breaker_->counters() : backend_detail::CircuitBreakerCounters{};
  }
  [[nodiscard]] std::size_t max_connections() const noexcept { return max_; }

 private:
  Result<Lease> lease_or_connect(Deadline deadline, bool probe);
  void give_back(std::unique_ptr<Connection> connection, bool probe);
  void connect_failed(const Status& status, bool probe);
  std::unique_ptr<Connection> take_hot() noexcept {
    return std::unique_ptr<Connection>(hot_.exchange(nullptr));
  }
  std::unique_ptr<Connection> take_idle(std::unique_lock<std::mutex>& lock, Deadline deadline,
                                        bool& may_open);
  void closed();

  Engine& engine_;
  const std::size_t max_;
  std::atomic<Connection*> hot_{nullptr};
  std::atomic<int> waiters_{0};
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
  std::optional<backend_detail::CircuitBreaker> breaker_;
};

}  // namespace cachekit::sql_internal
