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
// Circuit breaker (the "error threshold" django-redis users asked for, #314): without it a
// dead server costs every call a connect timeout, and a hung one (SIGSTOP, swapping) a read
// timeout, so a page making 20 cache calls waits 20 timeouts. A failed connect trips the
// breaker at once (the server is certainly unreachable); timeouts and I/O errors trip it
// after failure_threshold in a row, since one slow reply is not an outage. While tripped,
// calls fail in microseconds with kUnavailable and waiters are woken to fail too; after
// retry_interval a single probe call goes through and its outcome closes or re-trips the
// breaker. Idle connections are dropped on a trip: they lead to the same failed server.
#include "backends/redis/pool.h"

#include <fmt/format.h>

#include <utility>

namespace cachekit::redis_detail {

constexpr std::chrono::milliseconds kCheckAfter{1};

Pool::Pool(Endpoint endpoint, PoolOptions options)
    : endpoint_(std::move(endpoint)), options_(options), where_(endpoint_.describe()) {}

Pool::~Pool() = default;

Pool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      connection_(std::move(other.connection_)),
      probe_(other.probe_) {}

Pool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->release(std::move(connection_), probe_);
}

// Whether a call may go to the server now; sets `probe` for the one call let through after
// the breaker's interval.
Status Pool::admit_locked(SteadyTime now, bool& probe) {
  if (!tripped_) return {};
  if (now >= down_until_ && !probing_) {
    probing_ = true;
    probe = true;
    return {};
  }
  ++counters_.fast_failures;
  return unavailable_error(
      fmt::format("redis {}: marked down after a failure, retrying within {} "
                  "ms: {}",
                  where_, options_.retry_interval.count(), last_error_));
}

Result<Pool::Lease> Pool::acquire() {
  auto deadline = std::chrono::steady_clock::now() + options_.wait;
  std::unique_lock lock(mutex_);
  bool waited = false;
  for (;;) {
    bool probe = false;
    if (Status s = admit_locked(std::chrono::steady_clock::now(), probe); !s.ok()) return s;
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
    if (probe) probing_ = false;  // let another caller probe once a connection is free
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
  // Lease, so release() would never clear the flag and the breaker would stay open for good.
  if (probe) probing_ = false;
  // An AUTH or SELECT refusal is a configuration error, not an outage: no trip.
  if (connection.code() != StatusCode::kInvalidArgument) {
    record_failure_locked(std::chrono::steady_clock::now(), true, connection.status().message(),
                          to_close);
  }
  freed_.notify_one();
  lock.unlock();
  return connection.status();
}

void Pool::release(std::unique_ptr<Connection> connection, bool probe) noexcept {
  std::vector<std::unique_ptr<Connection>> to_close;
  {
    std::lock_guard lock(mutex_);
    if (probe) probing_ = false;
    if (connection->broken()) {
      --open_;
      ++counters_.discarded;
      record_failure_locked(std::chrono::steady_clock::now(), false, connection->error(), to_close);
      to_close.push_back(std::move(connection));
    } else if (connection->pending() != 0) {
      // Replies were left unread (a caller gave up half-way through a pipeline): the
      // connection is out of step but the server is fine.
      --open_;
      to_close.push_back(std::move(connection));
      consecutive_failures_ = 0;
      tripped_ = false;
    } else {
      connection->returned_at = std::chrono::steady_clock::now();
      idle_.push_back(std::move(connection));
      consecutive_failures_ = 0;
      tripped_ = false;
    }
  }
  freed_.notify_one();
  // to_close is destroyed here, outside the lock: closing sockets is a system call each.
}

void Pool::record_failure_locked(SteadyTime now, bool connect_failed, std::string message,
                                 std::vector<std::unique_ptr<Connection>>& to_close) {
  ++counters_.failures;
  ++consecutive_failures_;
  last_error_ = std::move(message);
  // A failed probe trips again at once; so does a failed connect.
  if (!connect_failed && !tripped_ && consecutive_failures_ < options_.failure_threshold) return;
  if (!tripped_ || now >= down_until_) ++counters_.trips;
  tripped_ = true;
  down_until_ = now + options_.retry_interval;
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
  c.down = tripped_;
  return c;
}

}  // namespace cachekit::redis_detail
