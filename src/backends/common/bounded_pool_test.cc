#include "backends/common/bounded_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/common/breaker_pool.h"

namespace cachekit::backend_detail {
namespace {

using namespace std::chrono_literals;

// A pooled item that counts its own destruction, so tests see when the pool closes one.
struct Item {
  int id;
  std::atomic<int>* closed;
  ~Item() { closed->fetch_add(1); }
};
using Pool = BoundedPool<Item>;

// Makes numbered items; fails the calls whose number is in `failing`.
struct Factory {
  std::atomic<int> calls{0};
  std::atomic<int> closed{0};
  std::vector<int> failing;
  Pool::Factory callback() {
    return [this](Pool::Clock::time_point) -> Result<Pool::Item> {
      const int n = ++calls;
      if (std::find(failing.begin(), failing.end(), n) != failing.end()) {
        return unavailable_error("connect refused");
      }
      return std::make_unique<Item>(n, &closed);
    };
  }
};

Pool::Options options(std::size_t max_size, std::chrono::milliseconds wait = 10s) {
  Pool::Options o;
  o.max_size = max_size;
  o.wait = wait;
  o.exhausted_message = "all busy";
  return o;
}

TEST(BoundedPool, ConcurrentCallersNeverExceedMaxSize) {
  constexpr int kThreads = 8, kRounds = 200;
  Factory factory;
  Pool pool(factory.callback(), options(3));
  std::atomic<int> in_use{0}, most_in_use{0};
  std::latch start(kThreads);
  std::vector<std::jthread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kRounds; ++i) {
        auto lease = pool.acquire();
        ASSERT_TRUE(lease.ok()) << lease.status().message();
        const int now = ++in_use;
        int seen = most_in_use.load();
        while (now > seen && !most_in_use.compare_exchange_weak(seen, now)) {
        }
        --in_use;
      }
    });
  }
  threads.clear();
  EXPECT_LE(most_in_use.load(), 3);
  EXPECT_LE(factory.calls.load(), 3);
  const auto c = pool.counters();
  EXPECT_LE(c.open, 3u);
  EXPECT_EQ(c.idle, c.open);
  EXPECT_EQ(c.wait_timeouts, 0u);
}

TEST(BoundedPool, WaitBoundEndsWithDeadlineExceeded) {
  Factory factory;
  Pool pool(factory.callback(), options(1, 50ms));
  auto held = pool.acquire();
  ASSERT_TRUE(held.ok());
  const auto start = std::chrono::steady_clock::now();
  AcquireFailure why = AcquireFailure::kNone;
  auto second = pool.acquire(&why);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 50ms);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(second.status().message(), "all busy");
  EXPECT_EQ(why, AcquireFailure::kExhausted);
  EXPECT_EQ(pool.counters().waits, 1u);
  EXPECT_EQ(pool.counters().wait_timeouts, 1u);
  EXPECT_EQ(factory.calls.load(), 1);
}

TEST(BoundedPool, DiscardClosesTheItemAndFreesItsSlot) {
  Factory factory;
  Pool pool(factory.callback(), options(1, 0ms));
  auto first = pool.acquire();
  ASSERT_TRUE(first.ok());
  first->discard();
  EXPECT_FALSE(static_cast<bool>(*first));
  EXPECT_EQ(factory.closed.load(), 1);
  auto second = pool.acquire();
  ASSERT_TRUE(second.ok()) << second.status().message();
  EXPECT_EQ((**second).id, 2);
  EXPECT_FALSE(second->reused());
  EXPECT_EQ(pool.counters().discarded, 1u);
  EXPECT_EQ(pool.counters().open, 1u);
}

TEST(BoundedPool, FactoryFailureFreesTheSlot) {
  Factory factory;
  factory.failing = {1};
  Pool pool(factory.callback(), options(1, 0ms));
  AcquireFailure why = AcquireFailure::kNone;
  auto failed = pool.acquire(&why);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable);
  EXPECT_EQ(failed.status().message(), "connect refused");
  EXPECT_EQ(why, AcquireFailure::kCreateFailed);
  EXPECT_EQ(pool.counters().open, 0u);
  auto next = pool.acquire();
  ASSERT_TRUE(next.ok()) << next.status().message();
  EXPECT_EQ((**next).id, 2);
}

TEST(BoundedPool, LeaseMovesOwnershipAndReturnsOnce) {
  Factory factory;
  Pool pool(factory.callback(), options(2));
  {
    auto first = pool.acquire();
    ASSERT_TRUE(first.ok());
    Pool::Lease moved(std::move(*first));
    EXPECT_FALSE(static_cast<bool>(*first));  // NOLINT(bugprone-use-after-move): on purpose
    EXPECT_EQ(moved->id, 1);
    auto second = pool.acquire();
    ASSERT_TRUE(second.ok());
    moved = std::move(*second);  // gives item 1 back, takes item 2
    EXPECT_EQ(moved->id, 2);
    EXPECT_EQ(pool.counters().idle, 1u);
  }
  const auto c = pool.counters();
  EXPECT_EQ(c.idle, 2u);
  EXPECT_EQ(c.open, 2u);
  EXPECT_EQ(factory.closed.load(), 0);
}

TEST(BoundedPool, ReusesTheMostRecentlyReturnedItem) {
  Factory factory;
  Pool pool(factory.callback(), options(2));
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    ASSERT_TRUE(a.ok() && b.ok());
  }  // b goes back first, then a
  auto again = pool.acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((**again).id, 1);
  EXPECT_TRUE(again->reused());
}

TEST(BoundedPool, UnusableIdleItemIsClosedAndReplaced) {
  Factory factory;
  Pool::Options o = options(1);
  o.usable = [](Item& item, Pool::Clock::duration) { return item.id != 1; };
  Pool pool(factory.callback(), o);
  { ASSERT_TRUE(pool.acquire().ok()); }
  auto lease = pool.acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((**lease).id, 2);
  EXPECT_EQ(factory.closed.load(), 1);
  EXPECT_EQ(pool.counters().discarded, 1u);
}

TEST(BoundedPool, AfterWakeEndsAWaitWithItsStatus) {
  Factory factory;
  std::atomic<bool> down{false};
  Pool::Options o = options(1, 10s);
  o.after_wake = [&]() -> Status { return down ? unavailable_error("marked down") : Status(); };
  Pool pool(factory.callback(), o);
  auto held = pool.acquire();
  ASSERT_TRUE(held.ok());
  Result<Pool::Lease> waited = Status(StatusCode::kInternal, "not run");
  AcquireFailure why = AcquireFailure::kNone;
  std::jthread waiter([&] { waited = pool.acquire(&why); });
  // The pool counts a waiter and starts its wait under one lock: once counted, it is asleep.
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (pool.counters().waits == 0 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  down = true;
  pool.drop_idle();  // wakes every waiter
  waiter.join();
  ASSERT_FALSE(waited.ok());
  EXPECT_EQ(waited.code(), StatusCode::kUnavailable);
  EXPECT_EQ(why, AcquireFailure::kInterrupted);
}

// BreakerPool: the breaker's layer over BoundedPool, as the Redis and PostgreSQL pools use it.
struct Flaky {
  bool broken = false;
};
using Guarded = BreakerPool<Flaky>;

Guarded::Hooks flaky_hooks() {
  Guarded::Hooks h;
  h.returned = [](Flaky& f) {
    return f.broken ? ReturnVerdict{ReturnVerdict::kFailed, "read timed out"} : ReturnVerdict{};
  };
  h.connect_failure = [](const Status& s) -> std::optional<bool> {
    if (s.code() == StatusCode::kInvalidArgument) return std::nullopt;
    return true;
  };
  h.trip_clears_pool = true;
  return h;
}

Guarded::Pool::Options guarded_options() {
  Guarded::Pool::Options o;
  o.max_size = 2;
  o.wait = 1s;
  return o;
}

TEST(BreakerPool, FailedConnectTripsAndLaterCallsFailFast) {
  Guarded pool([](auto) -> Result<Guarded::Pool::Item> { return unavailable_error("refused"); },
               guarded_options(), flaky_hooks(), CircuitBreakerOptions{3, 60s}, "test server");
  auto first = pool.acquire();
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.status().message(), "refused");
  auto second = pool.acquire();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find("test server: marked down"), std::string::npos);
  const auto c = pool.breaker_counters();
  EXPECT_TRUE(c.down);
  EXPECT_EQ(c.trips, 1u);
  EXPECT_EQ(c.fast_failures, 1u);
  EXPECT_EQ(pool.pool_counters().open, 0u);
}

TEST(BreakerPool, ConfigurationErrorOnConnectDoesNotTrip) {
  Guarded pool(
      [](auto) -> Result<Guarded::Pool::Item> { return invalid_argument_error("wrong password"); },
      guarded_options(), flaky_hooks(), CircuitBreakerOptions{1, 60s}, "test server");
  for (int i = 0; i < 3; ++i) {
    auto lease = pool.acquire();
    ASSERT_FALSE(lease.ok());
    EXPECT_EQ(lease.code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(pool.breaker_counters().down);
  EXPECT_EQ(pool.breaker_counters().failures, 0u);
}

TEST(BreakerPool, BrokenConnectionsTripAndDropTheIdleOnes) {
  Guarded pool([](auto) -> Result<Guarded::Pool::Item> { return std::make_unique<Flaky>(); },
               guarded_options(), flaky_hooks(), CircuitBreakerOptions{1, 60s}, "test server");
  {
    auto broken = pool.acquire();
    ASSERT_TRUE(broken.ok());
    (**broken).broken = true;
    {
      auto healthy = pool.acquire();
      ASSERT_TRUE(healthy.ok());
    }  // back to the pool, idle
    EXPECT_EQ(pool.pool_counters().idle, 1u);
  }  // the broken one comes back: a failure at threshold 1 trips and drops the idle one
  const auto c = pool.pool_counters();
  EXPECT_EQ(c.open, 0u);
  EXPECT_EQ(c.idle, 0u);
  EXPECT_EQ(c.discarded, 2u);
  EXPECT_TRUE(pool.breaker_counters().down);
  auto refused = pool.acquire();
  EXPECT_EQ(refused.code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace cachekit::backend_detail
