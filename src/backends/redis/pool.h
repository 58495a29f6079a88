#pragma once
// A bounded pool of connections to one Redis server, with a circuit breaker. Internal to the
// Redis backend. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "backends/common/circuit_breaker.h"
#include "backends/redis/connection.h"
#include "backends/redis/url.h"
#include "cachekit/status.h"

namespace cachekit::redis_internal {

struct PoolOptions {
  Timeouts timeouts{};
  std::size_t max_connections = 16;
  std::chrono::milliseconds wait{200};             // for a free connection
  std::chrono::milliseconds retry_interval{1000};  // how long a failing server stays down
  unsigned failure_threshold = 3;                  // consecutive failures that mark it down
};

struct PoolCounters {
  std::size_t open = 0, idle = 0;
  std::uint64_t created = 0;        // connections made
  std::uint64_t discarded = 0;      // closed after a failure, or found closed by the server
  std::uint64_t waits = 0;          // callers that waited for a free connection
  std::uint64_t wait_timeouts = 0;  // ... and gave up
  std::uint64_t failures = 0;       // failed connects, timeouts and I/O errors
  std::uint64_t trips = 0;          // times the server was marked down
  std::uint64_t fast_failures = 0;  // calls refused at once while it was down
  bool down = false;
};

class Pool {
 public:
  Pool(Endpoint endpoint, PoolOptions options);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // A connection on loan; it goes back to the pool (or is closed, if it broke) when the
  // Lease is destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Connection& operator*() const noexcept { return *connection_; }
    Connection* operator->() const noexcept { return connection_.get(); }

   private:
    friend class Pool;
    Lease(Pool* pool, std::unique_ptr<Connection> connection, bool probe) noexcept
        : pool_(pool), connection_(std::move(connection)), probe_(probe) {}
    Pool* pool_;
    std::unique_ptr<Connection> connection_;
    bool probe_;
  };

  // An idle connection, a new one, or one freed within `wait`. kUnavailable at once while
  // the server is marked down; kDeadlineExceeded when no connection came free in time; the
  // connect error when a new connection cannot be made.
  Result<Lease> acquire();
  [[nodiscard]] PoolCounters counters() const;
  [[nodiscard]] const std::string& where() const noexcept { return where_; }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  Result<Lease> connect(std::unique_lock<std::mutex>& lock, bool probe);
  void release(std::unique_ptr<Connection> connection, bool probe) noexcept;
  void record_failure_locked(SteadyTime now, bool connect_failed, std::string_view message,
                             bool probe, std::vector<std::unique_ptr<Connection>>& to_close);

  const Endpoint endpoint_;
  const PoolOptions options_;
  const std::string where_;

  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<Connection>> idle_;  // most recently used last
  std::size_t open_ = 0;                           // idle + lent out + being connected
  // After a trip, calls fail fast until the retry interval has passed, then one probe call is
  // let through; its success closes the breaker, its failure trips it again.
  backend_detail::CircuitBreaker breaker_;
  PoolCounters counters_;  // the pool's own counters; the breaker keeps its own
};

}  // namespace cachekit::redis_internal
