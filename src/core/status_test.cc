#include "cachekit/status.h"

#include <gtest/gtest.h>

#include "cachekit/backend.h"
#include "cachekit/bytes.h"
#include "cachekit/timeout.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "ok");
}

TEST(Status, CarriesCodeAndMessage) {
  Status s = unavailable_error("connection refused");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.is_transient());
  EXPECT_EQ(s.to_string(), "unavailable: connection refused");
}

TEST(Result, HoldsAValueOrAnError) {
  Result<int> good = 5;
  Result<int> bad = not_found_error("x");
  EXPECT_TRUE(good.ok());
  EXPECT_EQ(*good, 5);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), StatusCode::kNotFound);
  EXPECT_EQ(bad.value_or(7), 7);
}

TEST(Result, AnOkStatusIsNotAValue) {
  Result<int> r = Status();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.code(), StatusCode::kInternal);
}

TEST(Bytes, CopiesShareOnePayload) {
  Bytes a(std::string(100, 'x'));
  Bytes b = a;
  EXPECT_EQ(a.data(), b.data());
  EXPECT_EQ(b.size(), 100u);
  Bytes moved = std::move(a);
  EXPECT_EQ(moved.data(), b.data());
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
}

TEST(Bytes, EmptyNeedsNoAllocation) {
  Bytes e("");
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(e, "");
}

TEST(Timeout, DistinguishesDefaultNeverAndDurations) {
  EXPECT_TRUE(Timeout().is_default());
  EXPECT_TRUE(kNever.is_never());
  EXPECT_EQ(Timeout(300).duration(), 300s);
  EXPECT_EQ(Timeout(1.5).duration(), 1500ms);
  EXPECT_EQ(Timeout(2min).duration(), 120s);
  EXPECT_EQ(Timeout(0).duration(), 0s);
}

TEST(Expiry, ExpiresAtOrBeforeNow) {
  TimePoint t(10s);
  EXPECT_TRUE(Expiry::at(t).expired(t));
  EXPECT_FALSE(Expiry::at(t).expired(t - 1ms));
  EXPECT_FALSE(Expiry::never().expired(t));
  EXPECT_EQ(Expiry::from_epoch_ms(-1), Expiry::never());
  EXPECT_EQ(Expiry::from_epoch_ms(Expiry::at(t).epoch_ms()), Expiry::at(t));
}

TEST(Ttl, ReportsFromAnExpiry) {
  TimePoint now(100s);
  EXPECT_TRUE(Ttl::of(Expiry::never(), now).is_never());
  EXPECT_TRUE(Ttl::of(Expiry::at(now), now).is_missing());
  EXPECT_EQ(Ttl::of(Expiry::at(now + 5s), now).remaining(), 5s);
}

TEST(GlobMatch, FollowsRedisSyntax) {
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("h?llo", "hello"));
  EXPECT_FALSE(glob_match("h?llo", "hllo"));
  EXPECT_TRUE(glob_match("h[ae]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[ae]llo", "hillo"));
  EXPECT_TRUE(glob_match("h[^e]llo", "hallo"));
  EXPECT_FALSE(glob_match("h[^e]llo", "hello"));
  EXPECT_TRUE(glob_match("h[a-c]llo", "hbllo"));
  EXPECT_TRUE(glob_match(":1:user:*:name", ":1:user:42:name"));
  EXPECT_FALSE(glob_match(":1:user:*:name", ":1:user:42:mail"));
  EXPECT_TRUE(glob_match("a\\*b", "a*b"));
  EXPECT_FALSE(glob_match("a\\*b", "axb"));
  EXPECT_TRUE(glob_match("*a*a*a*", "xaxxaxxxa"));
  EXPECT_FALSE(glob_match(std::string(50, '*') + "b", std::string(5000, 'a')));
}

TEST(ParseDecimal, AcceptsOnlyWholeIntegers) {
  EXPECT_EQ(parse_decimal("42"), 42);
  EXPECT_EQ(parse_decimal("-7"), -7);
  EXPECT_EQ(parse_decimal("9223372036854775807"), INT64_MAX);
  EXPECT_FALSE(parse_decimal(""));
  EXPECT_FALSE(parse_decimal("4 2"));
  EXPECT_FALSE(parse_decimal("12abc"));
  EXPECT_FALSE(parse_decimal("9223372036854775808"));
}

TEST(CheckedAdd, ReportsOverflow) {
  EXPECT_EQ(*checked_add(1, 2), 3);
  EXPECT_EQ(checked_add(INT64_MAX, 1).code(), StatusCode::kOutOfRange);
  EXPECT_EQ(checked_add(INT64_MIN, -1).code(), StatusCode::kOutOfRange);
}

TEST(EscapeGlob, AnEscapedPrefixMatchesOnlyItself) {
  const std::string prefix = "shop*[v2]?\\:";
  EXPECT_EQ(escape_glob(prefix), "shop\\*\\[v2\\]\\?\\\\:");
  EXPECT_TRUE(glob_match(escape_glob(prefix) + "*", prefix + "product:7"));
  EXPECT_FALSE(glob_match(escape_glob(prefix) + "*", "shopX[v2]?\\:product:7"));
  EXPECT_FALSE(glob_match(escape_glob(prefix) + "*", "shop*v?\\:product:7"));
}

}  // namespace
}  // namespace cachekit
