#pragma once
// BoundedPool<T>: a bounded pool of connections (or any costly, single-threaded resource), the
// one shape behind the Redis, SQL and Memcached backends' pools. Thread-safe.
//
// - Size bound: at most `max_size` items exist at once, idle, lent out or being created. A slot
//   is reserved before its item is created, so concurrent callers never overshoot the bound.
// - Wait bound: a caller waits at most until its deadline (by default now + `wait`) for a free
//   slot, then gets kDeadlineExceeded with `exhausted_message`.
// - Creation: through the factory, outside the lock, so a slow connect never stalls callers that
//   could take an idle item meanwhile; a failed creation frees its slot and wakes one waiter.
// - Reuse: last in, first out, so under light load the same few items stay warm.
// - Hooks where pools differ: `usable` vets an idle item before it is lent (stale-connection
//   detection after a server restart), outside the lock, and an unusable one is closed;
//   `after_wake` may end a wait early with its status (a circuit breaker that tripped).
//
// A Lease lends one item: it goes back to the pool when the Lease is destroyed, or is closed at
// once by discard() (a broken connection), which frees its slot. Items are closed (destroyed)
// outside the lock: closing a socket is a system call, and may do I/O.
//
// Leases must not outlive their pool.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cachekit/status.h"

namespace cachekit::backend_detail {

struct BoundedPoolCounters {
  std::size_t open = 0;             // idle + lent out + being created
  std::size_t idle = 0;             // waiting in the pool
  std::uint64_t created = 0;        // items the factory made
  std::uint64_t discarded = 0;      // closed by discard(), found unusable, or dropped
  std::uint64_t waits = 0;          // callers that waited for a free slot
  std::uint64_t wait_timeouts = 0;  // ... and gave up
};

// Why an acquire() failed, for a layer on top that reacts differently to each (a breaker).
enum class AcquireFailure {
  kNone,
  kExhausted,     // no slot came free by the deadline
  kInterrupted,   // `after_wake` ended the wait
  kCreateFailed,  // the factory failed
};

template <class T, class Deleter = std::default_delete<T>>
class BoundedPool {
 public:
  using Clock = std::chrono::steady_clock;
  using Item = std::unique_ptr<T, Deleter>;
  // Makes a new item; `deadline` is the caller's (an engine may bound its connect by it).
  using Factory = std::function<Result<Item>(Clock::time_point deadline)>;

  struct Options {
    std::size_t max_size = 16;  // 0 is taken as 1
    std::chrono::milliseconds wait{200};
    std::string exhausted_message = "no free pooled connection";
    // Optional: false when an idle item (idle for `idle_for`) must not be lent; it is closed.
    std::function<bool(T&, Clock::duration idle_for)> usable;
    // Optional: called after every wake-up of a waiting caller, under the pool's lock; a
    // non-ok status ends the acquire with it.
    std::function<Status()> after_wake;
  };

  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          item_(std::move(other.item_)),
          reused_(other.reused_) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::exchange(other.pool_, nullptr);
        item_ = std::move(other.item_);
        reused_ = other.reused_;
      }
      return *this;
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { give_back(); }

    // Precondition for the accessors: the Lease holds an item (not moved from, not discarded).
    T& operator*() const noexcept { return *item_; }
    T* operator->() const noexcept { return item_.get(); }
    [[nodiscard]] T* get() const noexcept { return item_.get(); }
    explicit operator bool() const noexcept { return pool_ != nullptr; }
    // True when the item came from the idle list (it served earlier calls, so it may be stale).
    [[nodiscard]] bool reused() const noexcept { return reused_; }
    // Closes the item now instead of returning it (it broke) and frees its slot.
    void discard() noexcept {
      if (pool_ != nullptr) std::exchange(pool_, nullptr)->close(std::move(item_));
    }

   private:
    friend class BoundedPool;
    Lease(BoundedPool* pool, Item item, bool reused) noexcept
        : pool_(pool), item_(std::move(item)), reused_(reused) {}
    void give_back() noexcept {
      if (pool_ != nullptr) std::exchange(pool_, nullptr)->give_back(std::move(item_));
    }

    BoundedPool* pool_;
    Item item_;
    bool reused_;
  };

  BoundedPool(Factory factory, Options options)
      : factory_(std::move(factory)), options_(std::move(options)) {
    if (options_.max_size == 0) options_.max_size = 1;
    idle_.reserve(options_.max_size);
  }
  BoundedPool(const BoundedPool&) = delete;
  BoundedPool& operator=(const BoundedPool&) = delete;

  // An idle item, a new one while fewer than max_size exist, or one freed by the deadline.
  // kDeadlineExceeded (`exhausted_message`) when none came free in time; the factory's error
  // when creating fails; `after_wake`'s error when it ends a wait. `why`, when given, says which.
  Result<Lease> acquire(AcquireFailure* why = nullptr) {
    return acquire(Clock::now() + options_.wait, why);
  }
  Result<Lease> acquire(Clock::time_point deadline, AcquireFailure* why = nullptr) {
    AcquireFailure ignored = AcquireFailure::kNone;
    AcquireFailure& failure = why != nullptr ? *why : ignored;
    failure = AcquireFailure::kNone;
    std::unique_lock lock(mutex_);
    bool waited = false;
    for (;;) {
      if (auto lease = take_idle(lock)) return std::move(*lease);
      if (open_ < options_.max_size) return create(lock, deadline, failure);
      if (!waited) ++counters_.waits;
      waited = true;
      const bool timed_out = freed_.wait_until(lock, deadline) == std::cv_status::timeout;
      if (options_.after_wake) {
        if (Status s = options_.after_wake(); !s.ok()) {
          failure = AcquireFailure::kInterrupted;
          return s;
        }
      }
      if (timed_out && idle_.empty() && open_ >= options_.max_size) {
        ++counters_.wait_timeouts;
        failure = AcquireFailure::kExhausted;
        return Status(StatusCode::kDeadlineExceeded, options_.exhausted_message);
      }
    }
  }

  // Closes every idle item and wakes every waiter (its `after_wake` decides whether it goes on
  // waiting): for a server marked down, whose idle connections lead nowhere.
  void drop_idle() {
    std::vector<Idle> dropped;
    {
      std::lock_guard lock(mutex_);
      dropped.swap(idle_);
      open_ -= dropped.size();
      counters_.discarded += dropped.size();
    }
    freed_.notify_all();
  }  // `dropped` is closed here, outside the lock.

  [[nodiscard]] BoundedPoolCounters counters() const {
    std::lock_guard lock(mutex_);
    BoundedPoolCounters c = counters_;
    c.open = open_;
    c.idle = idle_.size();
    return c;
  }
  [[nodiscard]] std::size_t max_size() const noexcept { return options_.max_size; }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

 private:
  struct Idle {
    Item item;
    Clock::time_point returned_at;
  };

  // The most recently returned usable idle item, if any. Called with the lock held; the
  // `usable` check runs without it (it may be a system call).
  std::optional<Lease> take_idle(std::unique_lock<std::mutex>& lock) {
    while (!idle_.empty()) {
      Idle entry = std::move(idle_.back());
      idle_.pop_back();
      if (!options_.usable) return Lease(this, std::move(entry.item), true);
      lock.unlock();
      const bool usable = options_.usable(*entry.item, Clock::now() - entry.returned_at);
      if (usable) return Lease(this, std::move(entry.item), true);
      entry.item.reset();
      lock.lock();
      --open_;
      ++counters_.discarded;
    }
    return std::nullopt;
  }

  Result<Lease> create(std::unique_lock<std::mutex>& lock, Clock::time_point deadline,
                       AcquireFailure& failure) {
    ++open_;  // reserved before creating, so concurrent callers cannot overshoot max_size
    lock.unlock();
    Result<Item> made = factory_(deadline);
    lock.lock();
    if (made.ok()) {
      ++counters_.created;
      return Lease(this, std::move(made).value(), false);
    }
    --open_;
    lock.unlock();
    freed_.notify_one();  // a waiter may now create one itself
    failure = AcquireFailure::kCreateFailed;
    return made.status();
  }

  void give_back(Item item) noexcept {
    const auto now = Clock::now();
    {
      std::lock_guard lock(mutex_);
      idle_.push_back(Idle{std::move(item), now});
    }
    freed_.notify_one();
  }

  void close(Item item) noexcept {
    item.reset();
    {
      std::lock_guard lock(mutex_);
      --open_;
      ++counters_.discarded;
    }
    freed_.notify_one();
  }

  const Factory factory_;
  Options options_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<Idle> idle_;  // most recently returned last
  std::size_t open_ = 0;
  BoundedPoolCounters counters_;
};

}  // namespace cachekit::backend_detail
