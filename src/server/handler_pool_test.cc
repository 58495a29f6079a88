#include "server/handler_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace cachekit::server::detail {
namespace {

TEST(HandlerPool, RunsAcceptedTasks) {
  HandlerPool pool(2, 8);
  std::atomic<int> ran{0};
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  pool.stop();
  EXPECT_EQ(ran.load(), 8);
}

TEST(HandlerPool, RefusesBeyondTheQueueBound) {
  HandlerPool pool(1, 2);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> entered;
  ASSERT_TRUE(pool.try_submit([&] {
    entered.set_value();
    released.wait();
  }));
  entered.get_future().wait();
  EXPECT_TRUE(pool.try_submit([] {}));
  EXPECT_TRUE(pool.try_submit([] {}));
  EXPECT_FALSE(pool.try_submit([] {})) << "two waiting tasks fill a queue of two";
  EXPECT_EQ(pool.queued(), 2U);
  EXPECT_EQ(pool.busy(), 1U);
  release.set_value();
  pool.stop();
  EXPECT_EQ(pool.queued(), 0U);
}

TEST(HandlerPool, ZeroCapacityHandsOffToAnIdleThreadOnly) {
  HandlerPool pool(1, 0);
  // Wait until the thread is idle, then the first task is taken and the second refused.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  bool accepted = false;
  for (int i = 0; i < 1000 && !accepted; ++i) {
    accepted = pool.try_submit([released] { released.wait(); });
    if (!accepted) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(accepted);
  for (int i = 0; i < 1000 && pool.busy() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_FALSE(pool.try_submit([] {}));
  release.set_value();
}

TEST(HandlerPool, StopDrainsQueuedTasksAndRefusesNewOnes) {
  HandlerPool pool(1, 100);
  std::atomic<int> ran{0};
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  pool.stop();
  EXPECT_EQ(ran.load(), 50);
  EXPECT_FALSE(pool.try_submit([] {}));
  pool.stop();  // idempotent
}

TEST(HandlerPool, SurvivesAThrowingTask) {
  HandlerPool pool(1, 4);
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.try_submit([] { throw std::runtime_error("x"); }));
  ASSERT_TRUE(pool.try_submit([&] { ++ran; }));
  pool.stop();
  EXPECT_EQ(ran.load(), 1);
}

TEST(HandlerPool, ConcurrentSubmittersNeverExceedTheBound) {
  constexpr std::size_t kCapacity = 16;
  HandlerPool pool(3, kCapacity);
  std::atomic<int> accepted{0}, ran{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (pool.try_submit([&] { ++ran; })) ++accepted;
        EXPECT_LE(pool.queued(), kCapacity + 3);
      }
    });
  }
  for (auto& t : submitters) t.join();
  pool.stop();
  EXPECT_EQ(ran.load(), accepted.load());
  EXPECT_GT(accepted.load(), 0);
}

}  // namespace
}  // namespace cachekit::server::detail
