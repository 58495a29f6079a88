#include "backends/sql/pool.h"

#include <string>
#include <utility>

namespace cachekit::sql_internal {
namespace {

using backend_detail::BreakerPool;
using backend_detail::ReturnVerdict;

BreakerPool<Connection>::Pool::Options pool_options(std::size_t max_connections) {
  BreakerPool<Connection>::Pool::Options o;
  o.max_size = max_connections;
  o.exhausted_message =
      "all " + std::to_string(max_connections) + " database connections stayed busy";
  // For PostgreSQL a poll() syscall, run outside the pool's lock.
  o.usable = [](Connection& c, std::chrono::steady_clock::duration) { return c.still_usable(); };
  return o;
}

BreakerPool<Connection>::Hooks hooks() {
  BreakerPool<Connection>::Hooks h;
  h.returned = [](Connection& c) {
    if (c.broken())
      return ReturnVerdict{ReturnVerdict::kFailed, "a call timed out or lost its connection"};
    return ReturnVerdict{};
  };
  // A refused connect (kUnavailable) means the server is certainly unreachable: the breaker
  // trips at once. A connect that timed out counts like any timeout: it may only mean that
  // this caller's deadline was mostly spent waiting for a pooled connection.
  h.connect_failure = [](const Status& s) -> std::optional<bool> {
    return s.code() == StatusCode::kUnavailable;
  };
  return h;
}

}  // namespace

ConnectionPool::ConnectionPool(Engine& engine, std::size_t max_connections,
                               std::optional<backend_detail::CircuitBreakerOptions> breaker,
                               std::string name)
    : pool_([&engine](Deadline deadline) { return engine.connect(deadline); },
            pool_options(max_connections), hooks(), breaker, std::move(name)) {}

}  // namespace cachekit::sql_internal
