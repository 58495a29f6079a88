// Cache::get_or_refresh: stale-while-revalidate, stale-if-error and early refresh (ManualClock).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Waits (with a deadline) until `done()` holds: a background refresh landing.
template <class F>
bool eventually(F done) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

struct RefreshTest : ::testing::Test {
  ManualClock clock;
  std::atomic<int> loader_calls{0};
  std::atomic<bool> upstream_down{false};
  // Declared last: destroyed (its refresh thread joined) before what the loaders use.
  Cache cache{make_locmem_backend({.clock = &clock}), {.clock = &clock}};

  auto loader() {
    return [this] {
      int n = ++loader_calls;
      if (upstream_down) throw std::runtime_error("upstream down");
      return "v" + std::to_string(n);
    };
  }
};

TEST_F(RefreshTest, AFreshValueIsServedWithoutCallingTheLoader) {
  RefreshPolicy policy{.fresh_for = seconds(10)};
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  clock.advance(seconds(9));
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(cache.get("k")->view(), "v1");  // a plain get sees the payload while fresh
  clock.advance(seconds(2));
  EXPECT_FALSE(cache.get("k"));  // and a miss once stale
}

TEST_F(RefreshTest, ConcurrentReadersOfAStaleValueGetItAtOnceWhileOneRefreshRuns) {
  RefreshPolicy policy{.fresh_for = seconds(10), .stale_while_revalidate = seconds(30)};
  ASSERT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  clock.advance(seconds(11));
  std::latch readers_done(1);
  auto blocked_loader = [this, &readers_done] {
    readers_done.wait();  // opened only after every reader returned
    return "v" + std::to_string(++loader_calls);
  };
  std::atomic<int> stale_answers{0};
  {
    std::latch start(8);
    std::vector<std::jthread> readers;
    for (int t = 0; t < 8; ++t) {
      readers.emplace_back([&] {
        start.arrive_and_wait();
        for (int i = 0; i < 25; ++i) {
          if (cache.get_or_refresh("k", blocked_loader, policy).view() == "v1") ++stale_answers;
        }
      });
    }
  }
  EXPECT_EQ(stale_answers.load(), 200);
  readers_done.count_down();
  ASSERT_TRUE(eventually([&] { return cache.stats().refreshes == 1; }));
  EXPECT_EQ(loader_calls.load(), 2);  // the first load and exactly one refresh
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v2");
  EXPECT_EQ(cache.stats().stale_served_revalidate, 200u);
}

TEST_F(RefreshTest, AFailingLoaderServesTheStaleValueUntilStaleUntilThenTheError) {
  RefreshPolicy policy{.fresh_for = seconds(10), .stale_if_error = seconds(60)};
  ASSERT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  upstream_down = true;
  clock.advance(seconds(11));
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  clock.advance(seconds(58));  // 59 s after fresh-until: still inside stale_if_error
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  EXPECT_EQ(cache.stats().stale_served_error, 2u);
  clock.advance(seconds(2));  // past stale-until (fresh-until + 60 s)
  EXPECT_THROW((void)cache.get_or_refresh("k", loader(), policy), std::runtime_error);
  upstream_down = false;
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v5");
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v5");  // fresh again
}

TEST_F(RefreshTest, AFailedBackgroundRefreshIsCountedAndTheStaleValueStillServed) {
  RefreshPolicy policy{.fresh_for = seconds(10),
                       .stale_while_revalidate = seconds(30),
                       .stale_if_error = seconds(60)};
  ASSERT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  upstream_down = true;
  clock.advance(seconds(11));
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  ASSERT_TRUE(eventually([&] { return cache.stats().refresh_failures == 1; }));
  clock.advance(seconds(40));  // past the revalidate window, inside stale_if_error
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  EXPECT_EQ(cache.stats().stale_served_error, 1u);
}

TEST_F(RefreshTest, WithoutAGraceWindowTheLoadersErrorReachesTheCaller) {
  RefreshPolicy policy{.fresh_for = seconds(10)};
  ASSERT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  upstream_down = true;
  clock.advance(seconds(11));
  EXPECT_THROW((void)cache.get_or_refresh("k", loader(), policy), std::runtime_error);
}

TEST_F(RefreshTest, EarlyRefreshReloadsAFreshValueInTheBackground) {
  RefreshPolicy policy{.fresh_for = seconds(10), .early_refresh_beta = 1e9};
  auto slow_loader = [this] {
    clock.advance(seconds(1));  // δ = 1 s, measured on the cache's clock
    return "v" + std::to_string(++loader_calls);
  };
  ASSERT_EQ(cache.get_or_refresh("k", slow_loader, policy).view(), "v1");
  EXPECT_EQ(cache.get_or_refresh("k", slow_loader, policy).view(), "v1");  // served at once
  ASSERT_TRUE(eventually([&] { return cache.stats().refreshes == 1; }));
  EXPECT_GE(cache.stats().early_refreshes, 1u);
  EXPECT_EQ(loader_calls.load(), 2);
}

TEST_F(RefreshTest, EarlyRefreshIsOffByDefault) {
  RefreshPolicy policy{.fresh_for = seconds(10)};
  ASSERT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  clock.advance(seconds(9));
  EXPECT_EQ(cache.get_or_refresh("k", loader(), policy).view(), "v1");
  EXPECT_EQ(cache.stats().early_refreshes, 0u);
  EXPECT_EQ(loader_calls.load(), 1);
}

TEST_F(RefreshTest, TypedValuesGoThroughTheirCodec) {
  RefreshPolicy policy{.fresh_for = seconds(10)};
  auto v = cache.get_or_refresh(
      "k",
      [] {
        return std::vector<int>{1, 2};
      },
      policy);
  EXPECT_EQ(v, (std::vector<int>{1, 2}));
  auto again = cache.get_or_refresh(
      "k", [] { return std::vector<int>{3}; }, policy);
  EXPECT_EQ(again, (std::vector<int>{1, 2}));
}

}  // namespace
}  // namespace cachekit
