#pragma once
// A bounded pool of connections to one Redis server, with a circuit breaker. Internal to the
// Redis backend. Thread-safe. The pool and the breaker are the shared ones
// (backends/common/breaker_pool.h); this file says what is Redis's own: how to connect, when
// a pooled connection is checked for a server restart, and what a returned connection's state
// means.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "backends/common/breaker_pool.h"
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
  // A connection on loan; it goes back to the pool (or is closed, if it broke) when the
  // Lease is destroyed.
  using Lease = backend_detail::BreakerPool<Connection>::Lease;

  Pool(Endpoint endpoint, PoolOptions options);
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // An idle connection, a new one, or one freed within `wait`. kUnavailable at once while
  // the server is marked down; kDeadlineExceeded when no connection came free in time; the
  // connect error when a new connection cannot be made.
  Result<Lease> acquire() { return pool_.acquire(); }
  [[nodiscard]] PoolCounters counters() const;
  [[nodiscard]] const std::string& where() const noexcept { return where_; }
  [[nodiscard]] const Endpoint& endpoint() const noexcept { return endpoint_; }

 private:
  const Endpoint endpoint_;
  const PoolOptions options_;
  const std::string where_;
  backend_detail::BreakerPool<Connection> pool_;
};

}  // namespace cachekit::redis_internal
