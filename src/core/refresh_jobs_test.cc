#include "cachekit/refresh_jobs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "cachekit/lease.h"
#include "support/backend_wrapper.h"
#include "support/redis_test_support.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;
using namespace std::chrono_literals;

// One store (the data and the broker's schedule side by side, as a single-Redis deployment
// has them), a test clock, and a loader that counts its calls.
struct RefreshJobsTest : ::testing::Test {
  ManualClock clock;
  Cache cache{make_locmem_backend({.max_entries = 1000, .clock = &clock}), {.clock = &clock}};
  std::atomic<int> loads{0};

  RefreshLoader counting_loader() {
    return [this]() -> Result<std::string> { return "v" + std::to_string(++loads); };
  }
  RefreshScheduler make_scheduler(Cache* broker) {
    return RefreshScheduler({.broker = broker, .clock = &clock});
  }
  // Moves the clock in `step`s over `span`, letting each scheduler run what is due after each.
  template <class Each>
  void run_for(milliseconds span, milliseconds step, std::vector<RefreshScheduler*> schedulers,
               Each&& each) {
    for (milliseconds t{0}; t < span; t += step) {
      for (auto* s : schedulers) s->run_pending();
      each();
      clock.advance(step);
    }
  }
};

TEST_F(RefreshJobsTest, AJobKeepsAnEntryFreshSoNoReaderMissesOverSeveralIntervals) {
  RefreshScheduler jobs({.clock = &clock});
  jobs.refresh_key({.name = "hello", .interval = 1000ms, .jitter = 0.1}, cache, "hello",
                   counting_loader(), 3s);
  int misses = 0;
  run_for(10s, 50ms, {&jobs}, [&] { misses += cache.get("hello") ? 0 : 1; });
  EXPECT_EQ(misses, 0);
  // One load per interval (±10 % jitter): 10 s of runs, the first at 0.
  EXPECT_GE(loads.load(), 9);
  EXPECT_LE(loads.load(), 12);
  EXPECT_EQ(jobs.stats("hello")->runs, static_cast<std::uint64_t>(loads.load()));
  EXPECT_EQ(jobs.stats("hello")->failures, 0U);
}

TEST_F(RefreshJobsTest, TwoSchedulersSharingABrokerRefreshOncePerInterval) {
  auto a = make_scheduler(&cache);
  auto b = make_scheduler(&cache);
  for (auto* s : {&a, &b}) {
    s->refresh_key({.name = "hello", .interval = 1000ms, .jitter = 0}, cache, "hello",
                   counting_loader(), 3s);
  }
  int misses = 0;
  run_for(10s, 50ms, {&a, &b}, [&] { misses += cache.get("hello") ? 0 : 1; });
  EXPECT_EQ(misses, 0);
  EXPECT_EQ(loads.load(), 10);  // at 0, 1 s, ... 9 s: one per interval for the pair
  EXPECT_EQ(a.stats("hello")->runs + b.stats("hello")->runs, 10U);
  EXPECT_GT(a.stats("hello")->skipped_other_holder + b.stats("hello")->skipped_other_holder, 0U);
}

TEST_F(RefreshJobsTest, AFailingLoaderKeepsTheLastGoodValueAndBacksOff) {
  bool failing = false;
  RefreshScheduler jobs({.clock = &clock});
  jobs.refresh_key(
      {.name = "k", .interval = 8000ms, .jitter = 0, .max_backoff = 4000ms}, cache, "k",
      [&]() -> Result<std::string> {
        ++loads;
        if (failing) return unavailable_error("the upstream is down");
        return std::string("good");
      },
      1h);
  ASSERT_EQ(jobs.run_pending(), 1U);
  failing = true;
  clock.advance(8000ms);
  // Failures retry after 1 s (interval / 8), then 2 s, then 4 s, capped at max_backoff.
  std::vector<milliseconds> delays;
  for (int i = 0; i < 4; ++i) {
    const TimePoint before = clock.now();
    ASSERT_EQ(jobs.run_pending(), 1U);
    delays.push_back(*jobs.next_due() - before);
    clock.set(*jobs.next_due());
  }
  EXPECT_EQ(delays, (std::vector<milliseconds>{1000ms, 2000ms, 4000ms, 4000ms}));
  EXPECT_EQ(cache.get("k")->view(), "good");
  EXPECT_EQ(jobs.stats("k")->failures, 4U);
  EXPECT_EQ(jobs.stats("k")->consecutive_failures, 4U);
  EXPECT_EQ(jobs.stats("k")->last_error, "the upstream is down");
  failing = false;
  ASSERT_EQ(jobs.run_pending(), 1U);
  EXPECT_EQ(jobs.stats("k")->consecutive_failures, 0U);
  EXPECT_EQ(*jobs.next_due() - clock.now(), 8000ms);
}

TEST_F(RefreshJobsTest, ALoaderThatThrowsIsAFailureAndStoresNothing) {
  cache.set("k", "good", 1h);
  RefreshScheduler jobs({.clock = &clock});
  jobs.refresh_key(
      {.name = "k", .interval = 1000ms}, cache, "k",
      []() -> Result<std::string> { throw std::runtime_error("boom"); }, 1h);
  ASSERT_EQ(jobs.run_pending(), 1U);
  EXPECT_EQ(cache.get("k")->view(), "good");
  EXPECT_EQ(jobs.stats("k")->failures, 1U);
  EXPECT_EQ(jobs.stats("k")->last_error, "the job threw: boom");
}

TEST_F(RefreshJobsTest, AnAbandonedLeaseIsTakenOverAfterItsTtl) {
  auto jobs = make_scheduler(&cache);
  jobs.refresh_key({.name = "k", .interval = 1000ms, .lease_ttl = 2000ms}, cache, "k",
                   counting_loader(), 1h);
  // A holder claimed the job and died (SIGKILL): its lease stays until its ttl, nothing else.
  ASSERT_TRUE(cache.add("refresh:lease:k", "token-of-a-dead-holder", 2000ms));
  run_for(1900ms, 100ms, {&jobs}, [] {});
  EXPECT_EQ(loads.load(), 0);
  EXPECT_GT(jobs.stats("k")->skipped_other_holder, 0U);
  run_for(700ms, 100ms, {&jobs}, [] {});
  EXPECT_EQ(loads.load(), 1);
  EXPECT_EQ(cache.get("k")->view(), "v1");
}

TEST_F(RefreshJobsTest, ABrokerThatFailsRunsTheJobLocally) {
  auto down = std::make_shared<testing::BackendWrapper>(make_locmem_backend());
  down->set_down(true);
  Cache broker(down);
  auto jobs = make_scheduler(&broker);
  jobs.refresh_key({.name = "k", .interval = 1000ms, .jitter = 0}, cache, "k", counting_loader(),
                   1h);
  run_for(3s, 100ms, {&jobs}, [] {});
  EXPECT_EQ(loads.load(), 3);
  EXPECT_EQ(cache.get("k")->view(), "v3");
  EXPECT_GE(jobs.stats("k")->broker_errors, 3U);
}

TEST_F(RefreshJobsTest, RejectsBadJobsAtRegistration) {
  RefreshScheduler jobs({.clock = &clock});
  auto ok = [] { return Status(); };
  EXPECT_THROW(jobs.add({.name = ""}, ok), std::invalid_argument);
  EXPECT_THROW(jobs.add({.name = "j", .interval = 0ms}, ok), std::invalid_argument);
  EXPECT_THROW(jobs.add({.name = "j", .jitter = 0.9}, ok), std::invalid_argument);
  EXPECT_THROW(jobs.add({.name = "j"}, RefreshJob()), std::invalid_argument);
  jobs.add({.name = "j"}, ok);
  EXPECT_THROW(jobs.add({.name = "j"}, ok), std::invalid_argument);
}

TEST_F(RefreshJobsTest, MetricsTextCountsRunsFailuresAndSkipsPerJob) {
  RefreshScheduler jobs({.clock = &clock});
  jobs.add({.name = "good"}, [] { return Status(); });
  jobs.add({.name = "bad \"one\""}, [] { return unavailable_error("down"); });
  jobs.run_pending();
  const std::string text = jobs.metrics_text();
  EXPECT_NE(text.find("# TYPE cachekit_background_refreshes_total counter"), std::string::npos);
  EXPECT_NE(text.find("cachekit_background_refreshes_total{job=\"good\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("cachekit_background_refresh_failures_total{job=\"good\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("cachekit_background_refresh_failures_total{job=\"bad \\\"one\\\"\"} 1\n"),
            std::string::npos);
}

TEST(RefreshSchedulerThread, StopReturnsPromptlyWhileAJobWaitsForItsNextRun) {
  std::latch ran(1);
  RefreshScheduler jobs;
  jobs.add({.name = "hourly", .interval = 1h}, [&] {
    ran.count_down();
    return Status();
  });
  jobs.start();
  ran.wait();
  const auto before = std::chrono::steady_clock::now();
  jobs.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - before, 5s);  // not the hour of the interval
  EXPECT_EQ(jobs.stats("hourly")->runs, 1U);
}

TEST(RefreshSchedulerThread, AJobAddedAfterStartRunsWithoutWaitingForTheOthers) {
  std::latch ran(1);
  RefreshScheduler jobs;
  jobs.add({.name = "hourly", .interval = 1h}, [] { return Status(); });
  jobs.start();
  jobs.add({.name = "new", .interval = 1h}, [&] {
    ran.count_down();
    return Status();
  });
  ran.wait();  // hangs (the test times out) if the thread slept out the hourly job's hour
  jobs.stop();
  EXPECT_EQ(jobs.stats("new")->runs, 1U);
}

// Two schedulers in their own threads, the broker on the real shared Redis: every run of the
// pair is at least an interval (less the jitter) after the previous one, whoever ran it.
TEST(RefreshSchedulerRedis, ConcurrentSchedulersOnOneRedisBrokerRunOncePerInterval) {
  auto redis = make_redis_backend({.locations = {testing::shared_redis_url()}});
  ASSERT_TRUE(redis.ok()) << redis.status().message();
  Cache broker(*redis, {.key_prefix = testing::unique_namespace("refresh_jobs")});
  constexpr auto kInterval = 200ms;
  constexpr int kRuns = 8;
  std::mutex mutex;
  std::vector<std::chrono::steady_clock::time_point> runs;
  std::latch enough(1);
  auto job = [&] {
    std::lock_guard lock(mutex);
    runs.push_back(std::chrono::steady_clock::now());
    if (runs.size() == kRuns) enough.count_down();
    return Status();
  };
  RefreshScheduler a({.broker = &broker});
  RefreshScheduler b({.broker = &broker});
  a.add({.name = "j", .interval = kInterval, .jitter = 0.1}, job);
  b.add({.name = "j", .interval = kInterval, .jitter = 0.1}, job);
  a.start();
  b.start();
  enough.wait();
  a.stop();
  b.stop();
  std::lock_guard lock(mutex);
  for (std::size_t i = 1; i < runs.size(); ++i) {
    EXPECT_GE(runs[i] - runs[i - 1], kInterval * 0.9 - 20ms) << "runs " << i - 1 << " and " << i;
  }
  EXPECT_EQ(a.stats("j")->broker_errors + b.stats("j")->broker_errors, 0U);
  EXPECT_GT(a.stats("j")->skipped_other_holder + b.stats("j")->skipped_other_holder, 0U);
}

}  // namespace
}  // namespace cachekit
