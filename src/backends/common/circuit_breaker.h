#pragma once
// A circuit breaker for a networked backend's connection pool (Redis, PostgreSQL): after a
// failed connect, or `failure_threshold` timeouts or I/O errors in a row, the server is marked
// down; for `retry_interval` every call is refused at once with kUnavailable; then a single
// probe call is let through, and its outcome closes the breaker or arms it again.
//
// Why: without it a dead server costs every call a connect timeout, and a hung one (SIGSTOP,
// swapping) a read timeout, so a page making 20 cache calls waits 20 timeouts; and every
// timed-out connect leaves an entry in the server's listen backlog that it must work through
// once it answers again. A failed connect trips the breaker at once (the server is certainly
// unreachable); a timeout trips it only after `failure_threshold` in a row, since one slow
// reply is not an outage.
//
// Time is passed in by the caller (a steady-clock reading), so tests drive it without sleeps.
// Thread-safe. While the server is healthy, admit() and record_success() read one atomic flag
// and take no lock, so a pool's lock-free fast path stays lock-free.
#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "cachekit/status.h"

namespace cachekit::backend_detail {

struct CircuitBreakerOptions {
  unsigned failure_threshold = 3;                  // timeouts/I/O errors in a row that trip it
  std::chrono::milliseconds retry_interval{1000};  // how long a tripped server stays down
};

struct CircuitBreakerCounters {
  std::uint64_t failures = 0;       // failures recorded (connects, timeouts, I/O errors)
  std::uint64_t trips = 0;          // times the server was marked down
  std::uint64_t fast_failures = 0;  // calls refused at once while it was down
  bool down = false;
};

class CircuitBreaker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // `name` starts every refusal's message, e.g. "redis 127.0.0.1:6379".
  CircuitBreaker(std::string name, CircuitBreakerOptions options)
      : name_(std::move(name)), options_(options) {}

  // OK when a call may go to the server; `probe` is set for the one call let through after
  // retry_interval, which must end with record_success, record_failure or abandon_probe (each
  // given probe = true). kUnavailable ("marked down") while the server is down.
  Status admit(TimePoint now, bool& probe) {
    probe = false;
    if (healthy_.load(std::memory_order_acquire)) return {};
    std::lock_guard lock(mutex_);
    if (!tripped_) return {};
    if (now >= down_until_ && !probing_) {
      probing_ = true;
      probe = true;
      return {};
    }
    return refuse_locked();
  }

  // Like admit() for a call admitted earlier that then waited (for a pooled connection): OK
  // unless the server was marked down and its retry interval has not passed yet. Never makes
  // the caller the probe.
  Status recheck(TimePoint now) {
    if (healthy_.load(std::memory_order_acquire)) return {};
    std::lock_guard lock(mutex_);
    if (!tripped_ || now >= down_until_) return {};
    return refuse_locked();
  }

  // The probe never reached the server (no free connection, say): another call may probe.
  void abandon_probe() {
    std::lock_guard lock(mutex_);
    probing_ = false;
  }

  // A call reached the server and got an answer: the breaker closes.
  void record_success(bool probe) {
    if (!probe && healthy_.load(std::memory_order_acquire)) return;
    std::lock_guard lock(mutex_);
    if (probe) probing_ = false;
    consecutive_failures_ = 0;
    tripped_ = false;
    healthy_.store(!probing_, std::memory_order_release);
  }

  // A call failed to reach the server; `certain` (a refused connect) trips the breaker at once,
  // as does a failed probe. Returns true when this failure marked the server down (again), so
  // the pool can drop connections that lead to it and wake its waiters.
  bool record_failure(TimePoint now, bool certain, std::string_view message, bool probe) {
    std::lock_guard lock(mutex_);
    healthy_.store(false, std::memory_order_release);
    if (probe) probing_ = false;
    ++counters_.failures;
    ++consecutive_failures_;
    last_error_ = message;
    if (!certain && !probe && !tripped_ && consecutive_failures_ < options_.failure_threshold) {
      return false;
    }
    if (!tripped_ || now >= down_until_) ++counters_.trips;
    tripped_ = true;
    down_until_ = now + options_.retry_interval;
    return true;
  }

  [[nodiscard]] CircuitBreakerCounters counters() const {
    std::lock_guard lock(mutex_);
    CircuitBreakerCounters c = counters_;
    c.down = tripped_;
    return c;
  }
  [[nodiscard]] const CircuitBreakerOptions& options() const noexcept { return options_; }

 private:
  Status refuse_locked() {
    ++counters_.fast_failures;
    return unavailable_error(
        fmt::format("{}: marked down after a failure, retrying within {} ms: {}", name_,
                    options_.retry_interval.count(), last_error_));
  }

  const std::string name_;
  const CircuitBreakerOptions options_;
  // True while no failure is pending and no probe runs: the lock-free path of admit() and
  // record_success(). A stale read costs at most one extra call to a server just marked down.
  std::atomic<bool> healthy_{true};
  mutable std::mutex mutex_;
  unsigned consecutive_failures_ = 0;
  bool tripped_ = false;
  bool probing_ = false;
  TimePoint down_until_{};
  std::string last_error_;
  CircuitBreakerCounters counters_;
};

}  // namespace cachekit::backend_detail
