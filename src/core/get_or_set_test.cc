// Cache::get_or_set's single-flight: concurrent misses of one key run the loader once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <latch>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/file.h"
#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "support/backend_wrapper.h"

namespace cachekit {
namespace {

constexpr int kThreads = 8;

// Blocks the loader until every other caller of the round is waiting on its flight (the
// collapsed-wait counter says so), with a deadline so a broken single-flight fails, not hangs.
void wait_for_collapsed_waits(const Cache& cache, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (cache.stats().collapsed_waits < n && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
}

// Runs `body(thread index)` on kThreads threads that start together.
template <class F>
void run_together(F body) {
  std::latch start(kThreads);
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      body(t);
    });
  }
}

TEST(GetOrSetConcurrent, TwoHundredCallsOnAColdKeyRunTheLoaderOnce) {
  Cache cache(make_locmem_backend());
  std::atomic<int> loader_calls{0};
  std::atomic<int> answers{0};
  run_together([&](int) {
    for (int i = 0; i < 200 / kThreads; ++i) {
      Bytes v = cache.get_or_set("cold", [&] {
        ++loader_calls;
        wait_for_collapsed_waits(cache, kThreads - 1);
        return std::string("value");
      });
      if (v.view() == "value") ++answers;
    }
  });
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(answers.load(), 200);
  EXPECT_EQ(cache.stats().collapsed_waits, kThreads - 1u);
}

TEST(GetOrSetConcurrent, ALoaderThatThrowsWakesEveryWaiterWithItsErrorAndStoresNothing) {
  Cache cache(make_locmem_backend());
  std::atomic<int> loader_calls{0};
  std::atomic<int> errors{0};
  run_together([&](int) {
    try {
      (void)cache.get_or_set("cold", [&]() -> std::string {
        ++loader_calls;
        wait_for_collapsed_waits(cache, kThreads - 1);
        throw std::runtime_error("upstream down");
      });
    } catch (const std::runtime_error& e) {
      if (std::string(e.what()) == "upstream down") ++errors;
    }
  });
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(errors.load(), kThreads);
  EXPECT_FALSE(cache.contains("cold"));
}

TEST(GetOrSetConcurrent, WithAZeroTimeoutWaitersGetTheLeadersValueFromOneLoad) {
  Cache cache(make_locmem_backend());
  std::atomic<int> loader_calls{0};
  std::atomic<int> answers{0};
  run_together([&](int) {
    Bytes v = cache.get_or_set(
        "cold",
        [&] {
          ++loader_calls;
          wait_for_collapsed_waits(cache, kThreads - 1);
          return std::string("value");
        },
        0);
    if (v.view() == "value") ++answers;
  });
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(answers.load(), kThreads);
  EXPECT_FALSE(cache.contains("cold"));
}

TEST(GetOrSetConcurrent, TypedValuesAreSharedWithTheWaiters) {
  Cache cache(make_locmem_backend());
  std::atomic<int> loader_calls{0};
  std::atomic<int> answers{0};
  run_together([&](int) {
    std::vector<int> v = cache.get_or_set("cold", [&] {
      ++loader_calls;
      wait_for_collapsed_waits(cache, kThreads - 1);
      return std::vector<int>{1, 2, 3};
    });
    if (v == std::vector<int>{1, 2, 3}) ++answers;
  });
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(answers.load(), kThreads);
}

TEST(GetOrSet, AWaiterPastCollapseWaitLoadsItself) {
  Cache cache(make_locmem_backend(), {.collapse_wait = std::chrono::milliseconds(1)});
  std::latch second_done(1);
  std::atomic<int> loader_calls{0};
  std::jthread leader([&] {
    (void)cache.get_or_set("cold", [&] {
      ++loader_calls;
      second_done.wait();  // held until the other caller gave up waiting and loaded itself
      return std::string("first");
    });
  });
  wait_for_collapsed_waits(cache, 0);
  // The leader is in its loader once loader_calls is 1.
  while (loader_calls.load() == 0) std::this_thread::yield();
  Bytes v = cache.get_or_set("cold", [&] {
    ++loader_calls;
    return std::string("second");
  });
  second_done.count_down();
  EXPECT_EQ(v.view(), "second");
  EXPECT_EQ(loader_calls.load(), 2);
  EXPECT_EQ(cache.stats().collapsed_waits, 1u);
}

TEST(GetOrSet, AHitDoesNotCallTheLoader) {
  Cache cache(make_locmem_backend());
  cache.set("k", "stored");
  int calls = 0;
  Bytes v = cache.get_or_set("k", [&] {
    ++calls;
    return std::string("computed");
  });
  EXPECT_EQ(v.view(), "stored");
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(cache.stats().collapsed_waits, 0u);
}

TEST(GetOrSet, AStoreErrorTakingTheFleetLeaseFailsOpen) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cachekit-lease-fail-open-" + std::to_string(::getpid()));
  auto store = std::make_shared<testing::BackendWrapper>(*make_file_backend({.directory = dir}));
  ASSERT_TRUE(store->info().outlives_process);
  Cache cache(store);
  store->fail_calls(testing::Op::kAdd, 1);  // the first add() is the lease claim
  int calls = 0;
  Bytes v = cache.get_or_set("k", [&] {
    ++calls;
    return std::string("computed");
  });
  EXPECT_EQ(v.view(), "computed");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(cache.get("k")->view(), "computed");
  EXPECT_EQ(cache.stats().lease_waits, 0u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cachekit
