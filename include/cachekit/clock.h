#pragma once
// Clock: where cachekit reads the time, so tests can move time without sleeping.
//
// Expiry times are wall-clock instants (std::chrono::system_clock) because some stores
// (files, databases) share them between processes. SystemClock reads the kernel's coarse
// realtime clock (a few ns, millisecond-ish resolution), which is plenty for cache expiry.
// ManualClock is a test clock that only moves when told to. All clocks are thread-safe.

#include <atomic>
#include <chrono>

namespace cachekit {

using TimePoint = std::chrono::time_point<std::chrono::system_clock, std::chrono::milliseconds>;

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual TimePoint now() const noexcept = 0;
};

class SystemClock final : public Clock {
 public:
  [[nodiscard]] TimePoint now() const noexcept override;
  // The process-wide instance (stateless, so sharing it is safe).
  static const SystemClock& instance() noexcept;
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint(std::chrono::hours(24 * 365 * 50)))
      : ms_(start.time_since_epoch().count()) {}
  [[nodiscard]] TimePoint now() const noexcept override {
    return TimePoint(std::chrono::milliseconds(ms_.load(std::memory_order_relaxed)));
  }
  void advance(std::chrono::milliseconds d) noexcept {
    ms_.fetch_add(d.count(), std::memory_order_relaxed);
  }
  void set(TimePoint t) noexcept { ms_.store(t.time_since_epoch().count()); }

 private:
  std::atomic<std::chrono::milliseconds::rep> ms_;
};

}  // namespace cachekit
