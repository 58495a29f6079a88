#pragma once
// Assertions on Status and Result<T> that say what went wrong.
//
// `EXPECT_TRUE(r.ok())` prints "false" when it fails; these print the expression and the
// status it returned ("unavailable: connection refused"), so a failing test tells why:
//
//   ASSERT_OK(backend->set("k", "v", Expiry::never()));        // Status or Result<T>
//   EXPECT_STATUS(cache.strict().incr("text"), StatusCode::kFailedPrecondition);
//   EXPECT_THAT(results, Each(IsOk()));                         // gmock
//   EXPECT_THAT(backend->keys("*"), StatusIs(StatusCode::kUnimplemented));
//
// The macros evaluate their argument once and accept a trailing `<< message` like any gtest
// assertion. They hold no state and are safe in any thread that may use gtest assertions.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "cachekit/status.h"

namespace cachekit::testing {

// The Status of a Status or of a Result<T> (ok when the Result holds a value).
inline const Status& status_of(const Status& status) { return status; }
template <class T>
Status status_of(const Result<T>& result) {
  return result.status();
}

namespace internal {

template <class T>
::testing::AssertionResult assert_ok(const char* expression, const T& value) {
  Status status = status_of(value);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "Expected " << expression << " to be ok, but it is: " << status.to_string();
}

template <class T>
::testing::AssertionResult assert_status(const char* expression, const char* /*code_text*/,
                                         const T& value, StatusCode code) {
  Status status = status_of(value);
  if (status.code() == code) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "Expected " << expression << " to fail with " << status_code_name(code)
         << ", but it is: " << status.to_string();
}

}  // namespace internal

// gmock: matches an ok Status or a Result<T> that holds a value.
MATCHER(IsOk, negation ? "is not ok" : "is ok") {
  Status status = ::cachekit::testing::status_of(arg);
  *result_listener << "whose status is " << status.to_string();
  return status.ok();
}

// gmock: matches a Status or Result<T> whose code is `code`.
MATCHER_P(StatusIs, code,
          std::string(negation ? "has a status other than " : "has status ") +
              std::string(::cachekit::status_code_name(code))) {
  Status status = ::cachekit::testing::status_of(arg);
  *result_listener << "whose status is " << status.to_string();
  return status.code() == code;
}

}  // namespace cachekit::testing

// Non-fatal / fatal: `expr` (a Status or Result<T>) is ok.
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::cachekit::testing::internal::assert_ok, expr)
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::cachekit::testing::internal::assert_ok, expr)
// Non-fatal / fatal: `expr` (a Status or Result<T>) has the StatusCode `code`.
#define EXPECT_STATUS(expr, code) \
  EXPECT_PRED_FORMAT2(::cachekit::testing::internal::assert_status, expr, code)
#define ASSERT_STATUS(expr, code) \
  ASSERT_PRED_FORMAT2(::cachekit::testing::internal::assert_status, expr, code)
