#pragma once
// BreakerPool<T>: a BoundedPool (bounded_pool.h) of connections to one networked server, behind
// an optional CircuitBreaker (circuit_breaker.h). Shared by the Redis and PostgreSQL pools; a
// pool without breaker options (SQLite) is a plain BoundedPool. Thread-safe.
//
// Every acquire is admitted by the breaker first: while the server is marked down it fails at
// once with kUnavailable. The one probe call let through after the retry interval carries its
// flag in its Lease, and its outcome (the connection's verdict when the Lease comes back, or a
// failed connect) closes or re-arms the breaker; a probe that never reached the server (no
// free connection in time) is abandoned so that another call may probe.
//
// The backend says what a returned connection's state means (`returned`) and how a failed
// connect counts (`connect_failure`). With `trip_clears_pool` a trip closes the idle
// connections (they lead to the same failed server) and waiters fail fast instead of waiting
// for the pool timeout.
#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "backends/common/bounded_pool.h"
#include "backends/common/circuit_breaker.h"

namespace cachekit::backend_detail {

// What a connection that comes back from a call says about the server.
struct ReturnVerdict {
  enum Kind {
    kKeep,    // healthy: back to the pool
    kClose,   // out of step (unread replies), but the server answered: closed, not a failure
    kFailed,  // broken by a timeout or an I/O error: closed, and a failure for the breaker
  } kind = kKeep;
  std::string message;  // for kFailed: why
};

template <class T>
class BreakerPool {
 public:
  using Pool = BoundedPool<T>;
  using Clock = typename Pool::Clock;

  struct Hooks {
    std::function<ReturnVerdict(T&)> returned;  // required
    // A failed connect: std::nullopt when it says nothing about the server (a configuration
    // error); else whether the server is certainly unreachable (trip at once).
    std::function<std::optional<bool>(const Status&)> connect_failure;  // required
    bool trip_clears_pool = false;
  };

  class Lease {
   public:
    Lease(Lease&& other) noexcept = default;  // the moved-from inner lease is empty
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (inner_) owner_->give_back(std::move(inner_), probe_);
    }
    T& operator*() const noexcept { return *inner_; }
    T* operator->() const noexcept { return inner_.get(); }
    // True when the connection had served earlier calls (so it may have gone stale).
    [[nodiscard]] bool reused() const noexcept { return inner_.reused(); }

   private:
    friend class BreakerPool;
    Lease(BreakerPool* owner, typename Pool::Lease inner, bool probe) noexcept
        : owner_(owner), inner_(std::move(inner)), probe_(probe) {}
    BreakerPool* owner_;
    typename Pool::Lease inner_;
    bool probe_;  // the breaker's probe: its outcome closes or re-arms the breaker
  };

  // `breaker`: none, or its settings; `name` starts its refusals' messages.
  BreakerPool(typename Pool::Factory factory, typename Pool::Options options, Hooks hooks,
              std::optional<CircuitBreakerOptions> breaker, std::string name)
      : hooks_(std::move(hooks)),
        pool_(std::move(factory), with_wake_check(std::move(options), breaker.has_value())) {
    if (breaker) breaker_.emplace(std::move(name), *breaker);
  }

  // Admitted by the breaker, then BoundedPool::acquire. kUnavailable at once while the server
  // is marked down; kDeadlineExceeded when no connection came free by `deadline`; the
  // factory's error when a new connection cannot be made.
  Result<Lease> acquire(typename Clock::time_point deadline) {
    bool probe = false;
    if (breaker_) {
      if (Status s = breaker_->admit(Clock::now(), probe); !s.ok()) return s;
    }
    AcquireFailure why = AcquireFailure::kNone;
    auto lease = pool_.acquire(deadline, &why);
    if (lease.ok()) return Lease(this, std::move(*lease), probe);
    if (breaker_) not_acquired(lease.status(), why, probe);
    return lease.status();
  }
  Result<Lease> acquire() { return acquire(Clock::now() + pool_.options().wait); }

  [[nodiscard]] BoundedPoolCounters pool_counters() const { return pool_.counters(); }
  // The breaker's counters; all zero without a breaker.
  [[nodiscard]] CircuitBreakerCounters breaker_counters() const {
    return breaker_ ? breaker_->counters() : CircuitBreakerCounters{};
  }
  [[nodiscard]] std::size_t max_size() const noexcept { return pool_.max_size(); }

 private:
  typename Pool::Options with_wake_check(typename Pool::Options options, bool has_breaker) {
    if (has_breaker && hooks_.trip_clears_pool) {
      options.after_wake = [this] { return breaker_->recheck(Clock::now()); };
    }
    return options;
  }

  void not_acquired(const Status& status, AcquireFailure why, bool probe) {
    if (why == AcquireFailure::kCreateFailed) {
      // The probe is over whatever its outcome: a probe that could not connect never gets a
      // Lease, so give_back() would never end it and the breaker would stay open for good.
      if (auto certain = hooks_.connect_failure(status)) {
        failed(*certain, status.message(), probe);
        return;
      }
    }
    if (probe) breaker_->abandon_probe();  // the server was not asked: another call may probe
  }

  void failed(bool certain, std::string_view message, bool probe) {
    if (breaker_->record_failure(Clock::now(), certain, message, probe) &&
        hooks_.trip_clears_pool) {
      pool_.drop_idle();
    }
  }

  void give_back(typename Pool::Lease inner, bool probe) {
    ReturnVerdict verdict = hooks_.returned(*inner);
    if (verdict.kind != ReturnVerdict::kKeep) inner.discard();
    if (!breaker_) return;
    if (verdict.kind == ReturnVerdict::kFailed) {
      failed(false, verdict.message, probe);
    } else {
      breaker_->record_success(probe);
    }
  }  // a kept connection goes back to the pool here, as `inner` is destroyed

  Hooks hooks_;
  std::optional<CircuitBreaker> breaker_;  // before pool_: its after_wake hook uses it
  Pool pool_;
};

}  // namespace cachekit::backend_detail
