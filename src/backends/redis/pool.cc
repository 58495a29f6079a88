// The pool hands out connections LIFO, so under light load the same few stay warm and the
// rest are never opened. Connecting happens outside the lock: a slow connect must not stall
// callers that could take an idle connection meanwhile.
//
// Liveness: a server that restarts closes every pooled connection. A connection idle for
// more than kCheckAfter is checked with a non-blocking MSG_PEEK before it is lent, so the
// first call after a restart gets a fresh connection instead of an error. One returned
// within kCheckAfter is lent unchecked: under load that is nearly every call, and the
// syscall saved is a third of the client's per-call syscalls (a server that died in that
// millisecond fails the call like any call in flight). Nothing is ever retried, because a
// command that may have run (incr) must not run twice.
//
// Circuit breaker (the "error threshold" django-redis users asked for, #314; the logic is
// shared with the PostgreSQL pool in backends/common/circuit_breaker.h): a failed connect trips
// it at once, timeouts and I/O errors after failure_threshold in a row. While tripped, calls
// fail in microseconds with kUnavailable and waiters are woken to fail too; after
// retry_interval a single probe call goes through and its outcome closes or re-trips the
// breaker. Idle connections are dropped on a trip: they lead to the same failed server.
#include "backends/redis/pool.h"

#include <fmt/format.h>

#include <utility>

namespace cachekit::redis_internal {

constexpr std::chrono::milliseconds kCheckAfter{1};

Pool::Pool(Endpoint endpoint, PoolOptions options)
    : endpoint_(std::move(endpoint)),
      options_(options),
      where_(endpoint_.describe()),
      breaker_("redis " + where_, {options.failure_threshold, options.retry_interval}) {}

Pool::~Pool() = default;

Pool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      connection_(std::move(other.connection_)),
      probe_(other.probe_) {}

Pool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->release(std::move(connection_), probe_);
}

Result<Pool::Lease> Pool::acquire() {
  auto deadline = std::chrono::steady_clock::now() + options_.wait;
  std::unique_lock lock(mutex_);
  bool waited = false;
  for (;;) {
    bool probe = false;
    if (Status s = breaker_.admit(std::chrono::steady_clock::now(), probe); !s.ok()) return s;
    while (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      lock.unlock();
      auto idle_for = std::chrono::steady_clock::now() - connection->returned_at;
      bool closed = idle_for >= kCheckAfter && connection->peer_closed();
      if (!closed) return Lease(this, std::move(connection), probe);
      connection.reset();
      lock.lock();
      --open_;
      ++counters_.discarded;
    }
    if (open_ < options_.max_connections) return connect(lock, probe);
    if (probe) breaker_.abandon_probe();  // another caller probes once a connection is free
    if (!waited) ++counters_.waits;
    waited = true;
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.max_connections) {
      ++counters_.wait_timeouts;
      return Status(StatusCode::kDeadlineExceeded,
                    fmt::format("redis {}: no free connection within {} ms (max_connections {})",
                                where_, options_.wait.count(), options_.max_connections));
    }
  }
}

Result<Pool::Lease> Pool::connect(std::unique_lock<std::mutex>& lock, bool probe) {
  ++open_;
  lock.unlock();
  auto connection = Connection::open(endpoint_, options_.timeouts, where_);
  lock.lock();
  if (connection.ok()) {
    ++counters_.created;
    return Lease(this, std::move(connection).value(), probe);
  }
  --open_;
  std::vector<std::unique_ptr<Connection>> to_close;
  // The probe is over whatever its outcome: a probe that could not connect never gets a
  // Lease, so release() would never end it and the breaker would stay open for good.
  // An AUTH or SELECT refusal is a configuration error, not an outage: no trip.
  if (connection.code() != StatusCode::kInvalidArgument) {
    record_failure_locked(std::chrono::steady_clock::now(), true, connection.status().message(),
                          probe, to_close);
  } else if (probe) {
    breaker_.abandon_probe();
  }
  freed_.notify_one();
  lock.unlock();
  return connection.status();
}

void Pool::release(std::unique_ptr<Connection> connection, bool probe) noexcept {
  std::vector<std::unique_ptr<Connection>> to_close;
  {
    std::lock_guard lock(mutex_);
    if (connection->broken()) {
      --open_;
      ++counters_.discarded;
      record_failure_locked(std::chrono::steady_clock::now(), false, connection->error(), probe,
                            to_close);
      to_close.push_back(std::move(connection));
    } else if (connection->pending() != 0) {
      // Replies were left unread (a caller gave up half-way through a pipeline): the
      // connection is out of step but the server is fine.
      --open_;
      to_close.push_back(std::move(connection));
      breaker_.record_success(probe);
    } else {
      connection->returned_at = std::chrono::steady_clock::now();
      idle_.push_back(std::move(connection));
      breaker_.record_success(probe);
    }
  }
  freed_.notify_one();
  // to_close is destroyed here, outside the lock: closing sockets is a system call each.
}

void Pool::record_failure_locked(SteadyTime now, bool connect_failed, std::string_view message,
                                 bool probe, std::vector<std::unique_ptr<Connection>>& to_close) {
  if (!breaker_.record_failure(now, connect_failed, message, probe)) return;
  // Marked down: idle connections lead to the same failed server.
  open_ -= idle_.size();
  counters_.discarded += idle_.size();
  for (auto& c : idle_) to_close.push_back(std::move(c));
  idle_.clear();
  freed_.notify_all();  // waiters fail fast instead of waiting for the pool timeout
}

PoolCounters Pool::counters() const {
  std::lock_guard lock(mutex_);
  PoolCounters c = counters_;
  c.open = open_;
  c.idle = idle_.size();
  const auto breaker = breaker_.counters();
  c.failures = breaker.failures;
  c.trips = breaker.trips;
  c.fast_failures = breaker.fast_failures;
  c.down = breaker.down;
  return c;
}

}  // namespace cachekit::redis_internal
