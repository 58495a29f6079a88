#pragma once
// Timeout (what a caller asks for), Expiry (what a backend stores) and Ttl (what is left).
//
// Timeout is Django's tri-state: the cache's default (a default-constructed Timeout),
// never, or a duration. A zero or negative duration means "already expired": add() still
// reports success and nothing is retrievable. Integers and doubles are seconds, so
// `cache.set("k", v, 300)` and `cache.set("k", v, 5min)` mean the same. Every input is
// defined: durations saturate at ±kMaxTimeout (a century), and a NaN is an invalid timeout
// that the Cache refuses with kInvalidArgument.
//
// Backends never see a Timeout: the Cache façade turns it into an absolute Expiry.

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <type_traits>

#include "cachekit/clock.h"

namespace cachekit {

// The longest timeout kept: about a century. Longer ones (up to the largest integer, infinity
// or hours::max()) saturate to it, and shorter than -kMaxTimeout to -kMaxTimeout, so
// `now + timeout` can never overflow the clock, whatever the caller passes.
inline constexpr std::chrono::hours kMaxTimeout{24 * 36525};

class Timeout {
 public:
  // The cache's default timeout (300 s unless configured).
  constexpr Timeout() noexcept = default;
  // Saturates to ±kMaxTimeout; a floating-point NaN duration makes an invalid timeout.
  template <class Rep, class Period>
  constexpr Timeout(std::chrono::duration<Rep, Period> d) noexcept  // NOLINT: reads like Django
  {
    const std::chrono::duration<long double, std::milli> ms = d;
    if (!from_milliseconds(ms.count())) {
      if constexpr (std::integral<Rep>) {  // exact (truncating) when in range
        ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
      }
    }
  }
  // Seconds, as in Django: `cache.set(k, v, 300)`, `cache.set(k, v, 0.5)`. Integers of every
  // width convert exactly; both saturate to ±kMaxTimeout; NaN makes an invalid timeout.
  template <class N>
  requires(std::integral<N> || std::floating_point<N>) &&
      (!std::same_as<N, bool>)constexpr Timeout(N seconds) noexcept  // NOLINT: as in Django
  {
    if constexpr (std::floating_point<N>) {
      from_milliseconds(static_cast<long double>(seconds) * 1000);
    } else if constexpr (std::is_signed_v<N>) {
      const auto s = static_cast<std::intmax_t>(seconds);
      ms_ = s > kMaxSeconds ? kMaxMs : s < -kMaxSeconds ? -kMaxMs : s * 1000;
      kind_ = Kind::kDuration;
    } else {
      const auto s = static_cast<std::uintmax_t>(seconds);
      ms_ = s > static_cast<std::uintmax_t>(kMaxSeconds) ? kMaxMs
                                                         : static_cast<std::int64_t>(s) * 1000;
      kind_ = Kind::kDuration;
    }
  }

  static constexpr Timeout never() noexcept { return Timeout(Kind::kNever); }
  static constexpr Timeout use_default() noexcept { return Timeout(); }

  [[nodiscard]] constexpr bool is_default() const noexcept { return kind_ == Kind::kDefault; }
  [[nodiscard]] constexpr bool is_never() const noexcept { return kind_ == Kind::kNever; }
  [[nodiscard]] constexpr bool is_duration() const noexcept { return kind_ == Kind::kDuration; }
  // Made from a NaN: neither a duration, never nor the default. The Cache refuses it
  // (kInvalidArgument), as it refuses a bad key.
  [[nodiscard]] constexpr bool is_invalid() const noexcept { return kind_ == Kind::kInvalid; }
  // Precondition: is_duration().
  [[nodiscard]] constexpr std::chrono::milliseconds duration() const noexcept {
    return std::chrono::milliseconds(ms_);
  }

  friend constexpr bool operator==(const Timeout&, const Timeout&) noexcept = default;

 private:
  enum class Kind : std::uint8_t { kDefault, kNever, kDuration, kInvalid };
  static constexpr std::int64_t kMaxMs =
      std::chrono::duration_cast<std::chrono::milliseconds>(kMaxTimeout).count();
  static constexpr std::int64_t kMaxSeconds = kMaxMs / 1000;
  constexpr explicit Timeout(Kind k) noexcept : kind_(k) {}
  // Sets a NaN (invalid) or saturated duration and returns true; false when `ms` is within
  // ±kMaxTimeout (the duration is then set truncated toward zero, for the caller to refine).
  constexpr bool from_milliseconds(long double ms) noexcept {
    kind_ = Kind::kDuration;
    if (ms != ms) {
      kind_ = Kind::kInvalid;
    } else if (ms >= static_cast<long double>(kMaxMs)) {
      ms_ = kMaxMs;
    } else if (ms <= -static_cast<long double>(kMaxMs)) {
      ms_ = -kMaxMs;
    } else {
      ms_ = static_cast<std::int64_t>(ms);
      return false;
    }
    return true;
  }
  Kind kind_ = Kind::kDefault;
  std::int64_t ms_ = 0;
};

inline constexpr Timeout kNever = Timeout::never();

// An absolute expiry instant, or never.
class Expiry {
 public:
  constexpr Expiry() noexcept = default;  // never
  static constexpr Expiry never() noexcept { return Expiry(); }
  static constexpr Expiry at(TimePoint t) noexcept { return Expiry(t); }
  // The instant as milliseconds since the epoch; -1 for never (a stable wire/disk form).
  static constexpr Expiry from_epoch_ms(std::int64_t ms) noexcept {
    return ms < 0 ? never() : at(TimePoint(std::chrono::milliseconds(ms)));
  }

  [[nodiscard]] constexpr bool is_never() const noexcept { return !at_.has_value(); }
  // Precondition: !is_never().
  [[nodiscard]] constexpr TimePoint time() const noexcept { return *at_; }
  [[nodiscard]] constexpr std::int64_t epoch_ms() const noexcept {
    return at_ ? at_->time_since_epoch().count() : -1;
  }
  // An entry is expired once its expiry is at or before `now` (locmem's rule in Django). This is
  // the one "already expired" rule: the Cache applies it to the expiry a timeout gives (a zero
  // or negative timeout gives one in the past) and every backend to the expiry it is handed.
  [[nodiscard]] constexpr bool expired(TimePoint now) const noexcept {
    return at_.has_value() && *at_ <= now;
  }

  friend constexpr bool operator==(const Expiry&, const Expiry&) noexcept = default;

 private:
  constexpr explicit Expiry(TimePoint t) noexcept : at_(t) {}
  std::optional<TimePoint> at_;
};

// What ttl() reports: the key is missing, never expires, or expires after remaining().
class Ttl {
 public:
  static constexpr Ttl missing() noexcept { return Ttl(Kind::kMissing, {}); }
  static constexpr Ttl never() noexcept { return Ttl(Kind::kNever, {}); }
  static constexpr Ttl after(std::chrono::milliseconds remaining) noexcept {
    return Ttl(Kind::kExpires, remaining);
  }
  // From a stored expiry as seen at `now` (an expired entry is missing).
  static constexpr Ttl of(Expiry e, TimePoint now) noexcept {
    if (e.is_never()) return never();
    if (e.expired(now)) return missing();
    return after(e.time() - now);
  }

  [[nodiscard]] constexpr bool is_missing() const noexcept { return kind_ == Kind::kMissing; }
  [[nodiscard]] constexpr bool is_never() const noexcept { return kind_ == Kind::kNever; }
  [[nodiscard]] constexpr bool expires() const noexcept { return kind_ == Kind::kExpires; }
  // Precondition: expires().
  [[nodiscard]] constexpr std::chrono::milliseconds remaining() const noexcept {
    return remaining_;
  }

  friend constexpr bool operator==(const Ttl&, const Ttl&) noexcept = default;

 private:
  enum class Kind : std::uint8_t { kMissing, kNever, kExpires };
  constexpr Ttl(Kind k, std::chrono::milliseconds r) noexcept : kind_(k), remaining_(r) {}
  Kind kind_;
  std::chrono::milliseconds remaining_;
};

}  // namespace cachekit
