#pragma once
// Status and Result<T>: how every fallible cachekit call reports an error.
//
// A miss is never an error: it is an empty std::optional inside an ok Result.
// A Status carries a code that tells the caller what to do about it (modelled on
// absl::StatusCode) and a human-readable message. Both types are cheap to move and
// are safe to share between threads once built (they are immutable values).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace cachekit {

enum class StatusCode : std::uint8_t {
  kOk = 0,
  kNotFound,            // the key is missing (incr, incr_version): not a failure of the store
  kInvalidArgument,     // a bad key, value or option; retrying the same call fails again
  kFailedPrecondition,  // the stored value cannot take the operation (incr on text)
  kOutOfRange,          // an integer overflow in incr/decr
  kResourceExhausted,   // the value is larger than the store accepts
  kUnavailable,         // the store is down or unreachable: transient, retry with backoff
  kDeadlineExceeded,    // the store did not answer within the configured timeout
  kUnimplemented,       // the backend lacks this capability (keys, stats, ...)
  kDataLoss,            // a stored entry is corrupt (the fail-open API treats it as a miss)
  kInternal,            // a bug or an unexpected error from the operating system
};

// The name of a code, e.g. "unavailable".
std::string_view status_code_name(StatusCode code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;  // ok
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() noexcept { return Status(); }

  [[nodiscard]] bool ok() const noexcept { return code_ == StatusCode::kOk; }
  [[nodiscard]] StatusCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& message() const noexcept { return message_; }
  // "unavailable: connection refused" (or "ok").
  [[nodiscard]] std::string to_string() const;

  // True for errors that may go away by themselves (the store is down or slow).
  [[nodiscard]] bool is_transient() const noexcept {
    return code_ == StatusCode::kUnavailable || code_ == StatusCode::kDeadlineExceeded;
  }

  friend bool operator==(const Status& a, const Status& b) noexcept {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status not_found_error(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status invalid_argument_error(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status unavailable_error(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status unimplemented_error(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status internal_error(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// Result<T> holds either a T or a non-ok Status (g++ 12 has no std::expected in C++20).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  Result(Status status) : v_(std::in_place_index<1>, std::move(status)) {  // NOLINT
    if (std::get<1>(v_).ok()) v_.template emplace<1>(StatusCode::kInternal, "ok status in Result");
  }
  // NOLINTBEGIN(bugprone-forwarding-reference-overload): the requires-clause keeps Result and
  // Status out, so copies and moves still pick the copy and move constructors; clang-tidy 14
  // reads only enable_if, not requires.
  template <class U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Status> &&
           !std::is_same_v<std::decay_t<U>, Result>) Result(U&& value)
      : v_(std::in_place_index<0>, T(std::forward<U>(value))) {}  // NOLINT
  // NOLINTEND(bugprone-forwarding-reference-overload)

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // The error; an ok Status when the Result holds a value.
  [[nodiscard]] Status status() const { return ok() ? Status() : std::get<1>(v_); }
  [[nodiscard]] StatusCode code() const noexcept {
    return ok() ? StatusCode::kOk : std::get<1>(v_).code();
  }

  // Precondition: ok().
  T& value() & { return std::get<0>(v_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  [[nodiscard]] const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  [[nodiscard]] const T* operator->() const { return &value(); }

  template <class U>
  [[nodiscard]] T value_or(U&& fallback) const& {
    return ok() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, Status> v_;
};

}  // namespace cachekit
