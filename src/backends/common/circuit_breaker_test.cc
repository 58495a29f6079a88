// The circuit breaker on its own, driven by time points the test chooses: no sleeps.
#include "backends/common/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>

#include "support/status_matchers.h"

namespace cachekit::backend_detail {
namespace {

using namespace std::chrono_literals;
using TimePoint = CircuitBreaker::TimePoint;

class CircuitBreakerAdmission : public ::testing::Test {
 protected:
  // Whether a call is let through at `now`; `probe` tells whether it is the probe.
  bool admitted(TimePoint now, bool& probe) { return breaker_.admit(now, probe).ok(); }
  bool admitted(TimePoint now) {
    bool probe = false;
    return admitted(now, probe);
  }

  const TimePoint t0_{};
  CircuitBreaker breaker_{"test server", {.failure_threshold = 3, .retry_interval = 1000ms}};
};

TEST_F(CircuitBreakerAdmission, TimeoutsTripItOnlyAfterTheThresholdInARow) {
  EXPECT_FALSE(breaker_.record_failure(t0_, false, "timeout", false));
  EXPECT_FALSE(breaker_.record_failure(t0_, false, "timeout", false));
  EXPECT_TRUE(admitted(t0_)) << "two timeouts are not an outage";
  EXPECT_TRUE(breaker_.record_failure(t0_, false, "timeout 3", false));
  bool probe = false;
  Status refused = breaker_.admit(t0_ + 10ms, probe);
  EXPECT_STATUS(refused, StatusCode::kUnavailable);
  EXPECT_NE(refused.message().find("test server: marked down"), std::string::npos);
  EXPECT_NE(refused.message().find("timeout 3"), std::string::npos) << "says why";
  EXPECT_EQ(breaker_.counters().trips, 1u);
  EXPECT_EQ(breaker_.counters().failures, 3u);
  EXPECT_TRUE(breaker_.counters().down);
}

TEST_F(CircuitBreakerAdmission, ASuccessBetweenTimeoutsStartsTheCountAgain) {
  (void)breaker_.record_failure(t0_, false, "timeout", false);
  (void)breaker_.record_failure(t0_, false, "timeout", false);
  breaker_.record_success(false);
  EXPECT_FALSE(breaker_.record_failure(t0_, false, "timeout", false));
  EXPECT_FALSE(breaker_.record_failure(t0_, false, "timeout", false));
  EXPECT_TRUE(admitted(t0_));
}

TEST_F(CircuitBreakerAdmission, ARefusedConnectTripsItAtOnce) {
  EXPECT_TRUE(breaker_.record_failure(t0_, true, "connection refused", false));
  EXPECT_FALSE(admitted(t0_ + 999ms));
  EXPECT_EQ(breaker_.counters().fast_failures, 1u);
}

TEST_F(CircuitBreakerAdmission, OneProbePerRetryIntervalAndItsSuccessClosesIt) {
  (void)breaker_.record_failure(t0_, true, "refused", false);
  bool probe = false;
  ASSERT_TRUE(admitted(t0_ + 1000ms, probe));
  EXPECT_TRUE(probe);
  EXPECT_FALSE(admitted(t0_ + 1001ms)) << "only one probe at a time";
  breaker_.record_success(true);
  EXPECT_TRUE(admitted(t0_ + 1002ms, probe));
  EXPECT_FALSE(probe);
  EXPECT_FALSE(breaker_.counters().down);
}

TEST_F(CircuitBreakerAdmission, AFailedProbeReArmsItForAnotherInterval) {
  (void)breaker_.record_failure(t0_, true, "refused", false);
  bool probe = false;
  ASSERT_TRUE(admitted(t0_ + 1000ms, probe));
  ASSERT_TRUE(probe);
  EXPECT_TRUE(breaker_.record_failure(t0_ + 1200ms, false, "timeout", true))
      << "a failed probe trips it whatever the threshold";
  EXPECT_FALSE(admitted(t0_ + 2199ms));
  EXPECT_TRUE(admitted(t0_ + 2200ms, probe));
  EXPECT_TRUE(probe);
  EXPECT_EQ(breaker_.counters().trips, 2u);
}

TEST_F(CircuitBreakerAdmission, AnAbandonedProbeLetsTheNextCallProbe) {
  (void)breaker_.record_failure(t0_, true, "refused", false);
  bool probe = false;
  ASSERT_TRUE(admitted(t0_ + 1000ms, probe));
  breaker_.abandon_probe();
  EXPECT_TRUE(admitted(t0_ + 1001ms, probe));
  EXPECT_TRUE(probe);
}

TEST_F(CircuitBreakerAdmission, FailuresWhileDownDoNotCountAsNewTrips) {
  (void)breaker_.record_failure(t0_, true, "refused", false);
  // A call that was in flight when the server went down fails afterwards.
  EXPECT_TRUE(breaker_.record_failure(t0_ + 100ms, false, "timeout", false));
  EXPECT_EQ(breaker_.counters().trips, 1u);
  EXPECT_FALSE(admitted(t0_ + 1099ms)) << "the interval runs from the latest failure";
  EXPECT_TRUE(admitted(t0_ + 1100ms));
}

// Many callers meet a tripped breaker at once, after its interval: exactly one is the probe.
TEST_F(CircuitBreakerAdmission, ConcurrentCallersLetThroughExactlyOneProbe) {
  constexpr int kThreads = 8;
  (void)breaker_.record_failure(t0_, true, "refused", false);
  std::latch start(kThreads);
  std::atomic<int> probes{0}, admitted_calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      bool probe = false;
      if (breaker_.admit(t0_ + 1000ms, probe).ok()) ++admitted_calls;
      if (probe) ++probes;
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(probes.load(), 1);
  EXPECT_EQ(admitted_calls.load(), 1);
  EXPECT_EQ(breaker_.counters().fast_failures, static_cast<std::uint64_t>(kThreads - 1));
}

// Failures and successes from many threads while healthy: the lock-free path and the locked
// one agree, and a success after the last failure leaves the breaker closed.
TEST_F(CircuitBreakerAdmission, ConcurrentFailuresAndSuccessesKeepItConsistent) {
  constexpr int kThreads = 4;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < 1000; ++i) {
        bool probe = false;
        (void)breaker_.admit(t0_, probe);
        if (t % 2 == 0) {
          (void)breaker_.record_failure(t0_, false, "timeout", probe);
        } else {
          breaker_.record_success(probe);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(breaker_.counters().failures, 2000u);
  breaker_.record_success(false);
  EXPECT_FALSE(breaker_.counters().down);
  EXPECT_TRUE(admitted(t0_));
}

}  // namespace
}  // namespace cachekit::backend_detail
