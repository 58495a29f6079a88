// Timeout conversions: every integer width, every floating value (NaN, infinities, huge,
// negative) and every chrono duration becomes a defined timeout; none overflows.

#include "cachekit/timeout.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

// The longest timeout the façade keeps; longer ones are saturated to it.
constexpr milliseconds kMax = std::chrono::duration_cast<milliseconds>(kMaxTimeout);

struct ClockedCache {
  ManualClock clock;
  Cache cache{make_locmem_backend({.clock = &clock}),
              {.clock = &clock, .max_error_logs_per_second = 0}};
};

TEST(TimeoutOverflow, ThirtyDaysAsPlainIntegerSecondsStaysLive) {
  ClockedCache c;
  ASSERT_TRUE(c.cache.set("k", "v", 2592001));  // 30 days + 1 s, the README's style
  c.clock.advance(std::chrono::hours(24 * 30));
  ASSERT_TRUE(c.cache.get("k").has_value()) << "stored already expired";
  EXPECT_EQ(c.cache.ttl("k").remaining(), 1s);
  c.clock.advance(1s);
  EXPECT_FALSE(c.cache.get("k").has_value());
}

TEST(TimeoutOverflow, IntegersOfEveryWidthConvertExactlyOrSaturate) {
  EXPECT_EQ(Timeout(2147484).duration(), milliseconds(2147484000));
  EXPECT_EQ(Timeout(static_cast<std::int8_t>(-5)).duration(), -5s);
  EXPECT_EQ(Timeout(static_cast<std::uint8_t>(200)).duration(), 200s);
  EXPECT_EQ(Timeout(static_cast<std::uint16_t>(65535)).duration(), 65535s);
  EXPECT_EQ(Timeout(std::uint32_t{3000000000}).duration(), 3000000000s);
  EXPECT_EQ(Timeout(std::numeric_limits<std::uint32_t>::max()).duration(), kMax);  // 136 years
  EXPECT_EQ(Timeout(std::numeric_limits<std::int32_t>::max()).duration(), 2147483647s);
  EXPECT_EQ(Timeout(std::numeric_limits<std::int64_t>::max()).duration(), kMax);
  EXPECT_EQ(Timeout(std::numeric_limits<std::int64_t>::min()).duration(), -kMax);
  EXPECT_EQ(Timeout(std::numeric_limits<std::uint64_t>::max()).duration(), kMax);
  EXPECT_EQ(Timeout(std::numeric_limits<long long>::max() / 1000 + 1).duration(), kMax);
}

TEST(TimeoutOverflow, FloatsAreDefinedForEveryValue) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(Timeout(1.5).duration(), 1500ms);
  EXPECT_EQ(Timeout(-0.25).duration(), -250ms);
  EXPECT_EQ(Timeout(1e300).duration(), kMax);
  EXPECT_EQ(Timeout(-1e300).duration(), -kMax);
  EXPECT_EQ(Timeout(kInf).duration(), kMax);
  EXPECT_EQ(Timeout(-kInf).duration(), -kMax);
  EXPECT_EQ(Timeout(std::numeric_limits<float>::max()).duration(), kMax);
  EXPECT_EQ(Timeout(static_cast<long double>(2592001)).duration(), 2592001s);
  EXPECT_FALSE(Timeout(std::nan("")).is_duration());
  EXPECT_FALSE(Timeout(std::nanf("")).is_default()) << "NaN must not mean the default";
}

TEST(TimeoutOverflow, ChronoDurationsSaturateInsteadOfOverflowing) {
  EXPECT_EQ(Timeout(std::chrono::hours::max()).duration(), kMax);
  EXPECT_EQ(Timeout(std::chrono::hours::min()).duration(), -kMax);
  EXPECT_EQ(Timeout(std::chrono::duration<double>(std::nan(""))).is_duration(), false);
  EXPECT_EQ(Timeout(std::chrono::duration<double>(2.5)).duration(), 2500ms);
  EXPECT_EQ(Timeout(1500us).duration(), 1ms);
}

TEST(TimeoutOverflow, HugeTimeoutsStoreALiveEntryWithoutOverflowingTheClock) {
  ClockedCache c;
  ASSERT_TRUE(c.cache.set("int", "v", std::numeric_limits<std::int64_t>::max()));
  ASSERT_TRUE(c.cache.set("inf", "v", std::numeric_limits<double>::infinity()));
  ASSERT_TRUE(c.cache.set("hours", "v", std::chrono::hours::max()));
  c.clock.advance(std::chrono::hours(24 * 365 * 50));
  for (const char* key : {"int", "inf", "hours"}) {
    EXPECT_TRUE(c.cache.get(key).has_value()) << key;
    EXPECT_TRUE(c.cache.ttl(key).expires()) << key;
  }
}

TEST(TimeoutOverflow, NegativeInfinityIsAlreadyExpired) {
  ClockedCache c;
  c.cache.set("k", "old");
  EXPECT_TRUE(c.cache.set("k", "v", -std::numeric_limits<double>::infinity()));
  EXPECT_FALSE(c.cache.get("k").has_value());
}

TEST(TimeoutOverflow, NanIsRefusedWithAClearError) {
  ClockedCache c;
  const double nan = std::nan("");
  auto status = c.cache.strict().set("k", "v", nan);
  EXPECT_STATUS(status, StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("not a number"), std::string::npos) << status.message();
  EXPECT_STATUS(c.cache.strict().add("k", "v", nan), StatusCode::kInvalidArgument);
  EXPECT_FALSE(c.cache.set("k", "v", nan));
  EXPECT_FALSE(c.cache.add("k", "v", nan));
  ASSERT_TRUE(c.cache.set("k", "v"));
  EXPECT_FALSE(c.cache.touch("k", nan));
  std::vector<std::pair<std::string, std::string>> items{{"a", "1"}};
  EXPECT_EQ(c.cache.set_many(items, nan), std::vector<std::string>{"a"});
  EXPECT_FALSE(c.cache.get("a").has_value());
  EXPECT_EQ(c.cache.stats().errors, 4u);
  EXPECT_THROW(Cache(make_locmem_backend(), {.default_timeout = nan}), std::invalid_argument);
}

}  // namespace
}  // namespace cachekit
