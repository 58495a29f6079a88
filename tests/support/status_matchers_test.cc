// The status assertions pass on ok values, fail on errors, and say which error it was.

#include "support/status_matchers.h"

#include <gtest/gtest-spi.h>

namespace cachekit::testing {
namespace {

using ::testing::Not;

Result<int> refused() { return unavailable_error("connection refused"); }

TEST(StatusMatchers, PassOnOkStatusAndValue) {
  EXPECT_OK(Status());
  ASSERT_OK(Result<int>(5));
  EXPECT_STATUS(refused(), StatusCode::kUnavailable);
  ASSERT_STATUS(not_found_error("x"), StatusCode::kNotFound);
  EXPECT_THAT(Status(), IsOk());
  EXPECT_THAT(refused(), Not(IsOk()));
  EXPECT_THAT(refused(), StatusIs(StatusCode::kUnavailable));
  EXPECT_THAT(Result<int>(1), Not(StatusIs(StatusCode::kUnavailable)));
}

TEST(StatusMatchers, ExpectOkFailureNamesTheExpressionAndTheStatus) {
  EXPECT_NONFATAL_FAILURE(
      EXPECT_OK(refused()),
      "Expected refused() to be ok, but it is: unavailable: connection refused");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(invalid_argument_error("bad key")),
                          "invalid argument: bad key");
}

TEST(StatusMatchers, AssertOkFailureIsFatalAndNamesTheStatus) {
  EXPECT_FATAL_FAILURE(ASSERT_OK(refused()), "unavailable: connection refused");
}

TEST(StatusMatchers, ExpectStatusFailureNamesBothCodes) {
  EXPECT_NONFATAL_FAILURE(EXPECT_STATUS(Result<int>(3), StatusCode::kNotFound),
                          "to fail with not found, but it is: ok");
  EXPECT_FATAL_FAILURE(ASSERT_STATUS(refused(), StatusCode::kNotFound),
                       "to fail with not found, but it is: unavailable: connection refused");
}

TEST(StatusMatchers, StreamedMessageIsKept) {
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(refused()) << "while warming", "while warming");
}

TEST(StatusMatchers, MatcherExplainsTheStatus) {
  ::testing::StringMatchResultListener listener;
  EXPECT_FALSE(::testing::ExplainMatchResult(IsOk(), refused(), &listener));
  EXPECT_EQ(listener.str(), "whose status is unavailable: connection refused");
}

}  // namespace
}  // namespace cachekit::testing
