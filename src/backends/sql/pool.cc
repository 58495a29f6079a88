#include "backends/sql/pool.h"

#include <string>

namespace cachekit::sql_internal {

// Returns an idle connection, or null with `may_open` set when a slot for a new connection was
// reserved, or null without it when the deadline passed. Called with the lock held.
std::unique_ptr<Connection> ConnectionPool::take_idle(std::unique_lock<std::mutex>& lock,
                                                      Deadline deadline, bool& may_open) {
  may_open = false;
  while (true) {
    if (!idle_.empty()) {
      auto connection = std::move(idle_.back());
      idle_.pop_back();
      return connection;
    }
    if (auto hot = take_hot()) return hot;
    if (open_ < max_) {
      ++open_;  // reserved now, so concurrent callers cannot overshoot max_ while we connect
      may_open = true;
      return nullptr;
    }
    waiters_.fetch_add(1);
    auto hot = take_hot();  // filled after the check above, by a thread that saw no waiter
    const bool timed_out = !hot && returned_.wait_until(lock, deadline) == std::cv_status::timeout;
    waiters_.fetch_sub(1);
    if (hot) return hot;
    if (timed_out && idle_.empty() && open_ >= max_) return take_hot();
  }
}

Result<ConnectionPool::Lease> ConnectionPool::acquire(Deadline deadline) {
  bool probe = false;
  if (breaker_) {
    if (Status s = breaker_->admit(SteadyClock::now(), probe); !s.ok()) return s;
  }
  return lease_or_connect(deadline, probe);
}

Result<ConnectionPool::Lease> ConnectionPool::lease_or_connect(Deadline deadline, bool probe) {
  while (true) {
    bool may_open = false;
    std::unique_ptr<Connection> connection = take_hot();
    if (!connection) {
      std::unique_lock lock(mutex_);
      connection = take_idle(lock, deadline, may_open);
    }
    if (connection) {
      // The staleness check runs outside the lock: for PostgreSQL it is a poll() syscall.
      if (connection->still_usable()) return Lease(this, std::move(connection), true, probe);
      connection.reset();
      closed();
      continue;
    }
    if (!may_open) {
      if (probe) breaker_->abandon_probe();  // the server was not asked: another call may
      return Status(StatusCode::kDeadlineExceeded,
                    "all " + std::to_string(max_) + " database connections stayed busy");
    }
    auto fresh = engine_.connect(deadline);
    if (!fresh.ok()) {
      closed();  // a waiter may now try to connect itself
      connect_failed(fresh.status(), probe);
      return fresh.status();
    }
    return Lease(this, std::move(*fresh), false, probe);
  }
}

// A refused connect (kUnavailable) means the server is certainly unreachable: the breaker
// trips at once. A connect that timed out counts like any timeout: it may only mean that this
// caller's deadline was mostly spent waiting for a pooled connection.
void ConnectionPool::connect_failed(const Status& status, bool probe) {
  if (!breaker_) return;
  (void)breaker_->record_failure(SteadyClock::now(), status.code() == StatusCode::kUnavailable,
                                 status.message(), probe);
}

void ConnectionPool::closed() {
  std::lock_guard lock(mutex_);
  --open_;
  returned_.notify_one();
}

void ConnectionPool::give_back(std::unique_ptr<Connection> connection, bool probe) {
  if (connection->broken()) {
    connection.reset();  // closed outside the lock: closing may do I/O
    closed();
    if (breaker_) {
      (void)breaker_->record_failure(SteadyClock::now(), false,
                                     "a call timed out or lost its connection", probe);
    }
    return;
  }
  if (breaker_) breaker_->record_success(probe);
  Connection* expected = nullptr;
  if (hot_.compare_exchange_strong(expected, connection.get())) {
    connection.release();
    if (waiters_.load() == 0) return;
    std::lock_guard lock(mutex_);  // a waiter may be between its checks and its sleep
    returned_.notify_one();
    return;
  }
  std::lock_guard lock(mutex_);
  idle_.push_back(std::move(connection));
  returned_.notify_one();
}

std::size_t ConnectionPool::open_connections() const {
  std::lock_guard lock(mutex_);
  return open_;
}

}  // namespace cachekit::sql_internal
