// The Redis backend when its server fails: killed, frozen (SIGSTOP), restarted, or simply
// too busy for the pool. Each test runs its own redis-server, so the shared test servers are
// never disturbed. Time bounds are correctness properties (a cache must never hang a
// request), measured with generous slack for a loaded 2-core CI machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <map>
#include <thread>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "support/redis_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::ServerProcess;

constexpr auto kTimeout = 100ms;
constexpr auto kSlack = 400ms;  // scheduling noise on a busy machine

template <class F>
std::chrono::milliseconds time_of(F&& f) {
  auto start = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

class RedisFault : public ::testing::Test {
 protected:
  void SetUp() override { make_backend({}); }
  // Short timeouts unless the test chose its own.
  void make_backend(RedisOptions options) {
    const RedisOptions defaults;
    options.locations = {testing::url_of(server_)};
    if (options.connect_timeout == defaults.connect_timeout) options.connect_timeout = kTimeout;
    if (options.io_timeout == defaults.io_timeout) options.io_timeout = kTimeout;
    if (options.pool_wait == defaults.pool_wait) options.pool_wait = kTimeout;
    if (options.retry_after == defaults.retry_after) options.retry_after = 200ms;
    auto backend = make_redis_backend(options);
    ASSERT_OK(backend);
    backend_ = *backend;
    cache_ = std::make_unique<Cache>(backend_, CacheOptions{.max_error_logs_per_second = 0});
  }
  std::map<std::string, std::string> stats() {
    auto s = backend_->stats();
    if (!s.ok()) return {};
    return {s->begin(), s->end()};
  }

  ServerProcess server_ = testing::start_private_redis();
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<Cache> cache_;
};

TEST_F(RedisFault, KilledServerFailsFastAndTheFacadeFailsOpen) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.kill();
  std::optional<Bytes> got;
  EXPECT_LT(time_of([&] { got = cache_->get("k"); }), kTimeout + kSlack);
  EXPECT_FALSE(got.has_value());  // a miss, not an exception or a hang
  auto strict = cache_->strict().get("k");
  EXPECT_STATUS(strict, StatusCode::kUnavailable);
  EXPECT_FALSE(cache_->set("k", "v2"));
  EXPECT_FALSE(cache_->add("other", "v"));
  EXPECT_FALSE(cache_->contains("k"));
  EXPECT_TRUE(cache_->get_many({"a", "b"}).empty());
  EXPECT_GE(cache_->stats().errors, 5u);
}

TEST_F(RedisFault, FrozenServerCostsOneTimeoutNotAHang) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.stop();  // the kernel still accepts connections; nothing answers
  std::optional<Bytes> got;
  auto took = time_of([&] { got = cache_->get("k"); });
  EXPECT_FALSE(got.has_value());
  EXPECT_GE(took, kTimeout - 10ms);
  EXPECT_LT(took, kTimeout + kSlack);
  auto strict = cache_->strict().get("k");
  EXPECT_THAT(strict.code(), AnyOf(StatusCode::kDeadlineExceeded, StatusCode::kUnavailable));
  server_.resume();
}

TEST_F(RedisFault, BreakerMakesADeadServerCostOneTimeoutPerInterval) {
  make_backend({.retry_after = 5s, .down_after_failures = 2});
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.stop();
  // Two timeouts in a row mark the server down; then twenty calls fail at once.
  for (int i = 0; i < 2; ++i) (void)cache_->get("k");
  auto twenty = time_of([&] {
    for (int i = 0; i < 20; ++i) EXPECT_FALSE(cache_->get("k").has_value());
  });
  EXPECT_LT(twenty, kTimeout);
  auto down = cache_->strict().get("k");
  EXPECT_STATUS(down, StatusCode::kUnavailable);
  EXPECT_THAT(down.status().message(), HasSubstr("marked down"));
  server_.resume();
  auto s = stats();  // stats() also fails fast while marked down
  EXPECT_TRUE(s.empty());
}

TEST_F(RedisFault, RestartedServerIsUsedAgainByTheSameBackend) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.kill();
  // Three failures in a row (the default threshold) mark the server down, whether they come
  // from the pooled connection's closed socket or from refused connects.
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(cache_->get("k").has_value());
  server_.restart();  // same port, empty (no persistence)
  // Within one retry interval (200 ms) the breaker lets a probe through.
  auto deadline = Clock::now() + 3s;
  Status last;
  while (Clock::now() < deadline) {
    last = cache_->strict().set("k", "again");
    if (last.ok()) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_OK(last);
  EXPECT_EQ(cache_->get("k")->view(), "again");
  for (int i = 0; i < 20; ++i) EXPECT_OK(cache_->strict().get("k"));
  auto s = stats();
  EXPECT_GE(std::stoi(s["pool.trips"]), 1);
  EXPECT_EQ(s["pool.down"], "false");
}

// The outage outlasts retry_after, so the breaker's first probe finds the port closed and
// fails to connect; the server then comes back (empty) on the same port. The probe's failure
// must re-arm the breaker, not leave it waiting forever for a probe that never reports back.
TEST_F(RedisFault, FailedProbeConnectDoesNotKeepTheServerDownForever) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.kill();
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(cache_->get("k").has_value());
  // Wait out the interval, then let the probe fail against the dead port.
  auto probe_due = Clock::now() + 300ms;
  Result<std::optional<Bytes>> probe = std::optional<Bytes>();
  while (Clock::now() < probe_due || probe.code() != StatusCode::kUnavailable ||
         probe.status().message().find("marked down") != std::string::npos) {
    probe = cache_->strict().get("k");
    if (Clock::now() > probe_due + 3s) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_STATUS(probe, StatusCode::kUnavailable);
  EXPECT_THAT(probe.status().message(), ::testing::Not(HasSubstr("marked down")))
      << "the probe must have tried to connect";
  server_.restart();
  auto deadline = Clock::now() + 3s;  // retry_after is 200 ms
  Status last;
  while (Clock::now() < deadline) {
    last = cache_->strict().set("k", "back");
    if (last.ok()) break;
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_OK(last) << "still down after the restart: " << last.to_string();
  EXPECT_EQ(cache_->get("k")->view(), "back");
  EXPECT_EQ(stats()["pool.down"], "false");
}

TEST_F(RedisFault, RestartBetweenCallsCostsNoError) {
  // Pooled connections to the old process are noticed as closed before use.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(cache_->set("k" + std::to_string(i), "v"));
  server_.restart();
  auto got = cache_->strict().get("k0");
  ASSERT_OK(got);
  EXPECT_FALSE(got->has_value());  // the new process is empty
  EXPECT_OK(cache_->strict().set("k0", "v"));
}

TEST_F(RedisFault, WaitingForAConnectionIsBounded) {
  make_backend({.io_timeout = 1s, .pool_size = 1});
  ASSERT_TRUE(cache_->set("k", "v"));
  server_.stop();
  // Two calls start together on a pool of one: one holds the connection until its read times
  // out (1 s), the other waits for it at most pool_wait (100 ms) and fails with the pool's own
  // error, long before the connection comes back.
  std::latch start(2);
  Result<std::optional<Bytes>> got[2] = {std::optional<Bytes>(), std::optional<Bytes>()};
  std::chrono::milliseconds took[2]{};
  auto call = [&](int i) {
    start.arrive_and_wait();
    took[i] = time_of([&] { got[i] = cache_->strict().get("k"); });
  };
  std::thread other(call, 1);
  call(0);
  other.join();
  server_.resume();
  const int waiter =
      got[0].status().message().find("no free connection") != std::string::npos ? 0 : 1;
  EXPECT_STATUS(got[waiter], StatusCode::kDeadlineExceeded);
  EXPECT_THAT(got[waiter].status().message(), HasSubstr("no free connection"));
  EXPECT_LT(took[waiter], kTimeout + kSlack) << "the wait for a connection is bounded";
  EXPECT_FALSE(got[1 - waiter].ok());
  EXPECT_GE(took[1 - waiter], 1s - 20ms) << "the holder kept the connection for its timeout";
}

TEST_F(RedisFault, ConcurrentCallersBeyondMaxConnectionsAllComplete) {
  make_backend({.pool_size = 4, .pool_wait = 5s});
  constexpr int kThreads = 24, kEach = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      StrictCache strict = cache_->strict();
      for (int i = 0; i < kEach; ++i) {
        std::string key = "k" + std::to_string(t);
        if (!strict.set(key, std::to_string(i)).ok()) ++failures;
        auto got = strict.get(key);
        if (!got.ok() || !got->has_value() || (*got)->view() != std::to_string(i)) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto s = stats();
  EXPECT_LE(std::stoi(s["pool.created"]), 4);
  EXPECT_LE(std::stoi(s["pool.open"]), 4);
}

}  // namespace
}  // namespace cachekit
