// The PostgreSQL engine when its server goes away, hangs or restarts, on a private cluster
// (tests/support/postgres_server.h) so the shared test server is never disturbed.
//
// Time bounds are correctness here: with a 200 ms timeout, a call against a frozen server must
// come back in well under a second, and a call against a stopped one (the port refuses) at
// once. Service must resume after a restart with the same backend object.
#include <cachekit/cache.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "support/postgres_server.h"
#include "support/sql_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class PostgresFault : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new testing::PostgresServer(testing::PostgresServer::start());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!server_->running()) server_->restart();
    server_->resume();
    PostgresOptions options;
    options.url = server_->url();
    options.table = sql_testing::unique_table("fault");
    options.pool_size = 4;
    {  // with the default, generous timeouts: a cluster just started on a busy machine can
       // take longer than the test's 200 ms to accept its first connection
      auto setup = make_postgres_backend(options);
      ASSERT_OK(setup);
      auto created = create_cache_table(**setup, false);
      ASSERT_OK(created);
    }
    options.call_timeout = kTimeout;
    options.connect_timeout = kTimeout;
    auto backend = make_postgres_backend(options);
    ASSERT_OK(backend);
    backend_ = *backend;
    cache_ = std::make_unique<Cache>(backend_, CacheOptions{.max_error_logs_per_second = 0});
    // One pooled connection before the faults start, so that no test's first call pays a
    // slow connect on a loaded machine.
    const auto deadline = Clock::now() + 10s;
    while (!cache_->strict().get("warm-up").ok() && Clock::now() < deadline) {
      std::this_thread::sleep_for(50ms);
    }
    ASSERT_OK(cache_->strict().get("warm-up"));
  }

  // Runs `call` and returns how long it took.
  template <class F>
  static Clock::duration timed(F call) {
    const auto start = Clock::now();
    call();
    return Clock::now() - start;
  }

  // Polls `call` until it succeeds, at most for the breaker's retry interval and a second
  // (the probe's own call included); returns how long that took.
  template <class F>
  static Clock::duration until_served(F call) {
    const auto start = Clock::now();
    while (!call() && Clock::now() - start < kRetryInterval + 1s) {
      std::this_thread::sleep_for(10ms);
    }
    return Clock::now() - start;
  }

  static constexpr std::chrono::milliseconds kTimeout{200};
  static constexpr std::chrono::milliseconds kRetryInterval{1000};  // the default
  static testing::PostgresServer* server_;
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<Cache> cache_;
};

testing::PostgresServer* PostgresFault::server_ = nullptr;

TEST_F(PostgresFault, AStoppedServerFailsFastAsUnavailable) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_->shutdown();
  Result<std::optional<Bytes>> got = std::optional<Bytes>{};
  auto took = timed([&] { got = cache_->strict().get("k"); });
  EXPECT_STATUS(got, StatusCode::kUnavailable);
  EXPECT_LT(took, 100ms) << "a refused connection costs no timeout";
  took = timed([&] { EXPECT_FALSE(cache_->get("k").has_value()); });  // fail-open: a miss
  EXPECT_LT(took, 100ms);
  EXPECT_FALSE(cache_->set("k", "v2"));
  EXPECT_EQ(cache_->stats().errors, 2u);
}

TEST_F(PostgresFault, AFrozenServerCostsAtMostTheTimeout) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_->pause();
  for (int i = 0; i < 3; ++i) {  // an established connection, then new ones
    Result<std::optional<Bytes>> got = std::optional<Bytes>{};
    auto took = timed([&] { got = cache_->strict().get("k"); });
    EXPECT_STATUS(got, StatusCode::kDeadlineExceeded);
    EXPECT_GE(took, kTimeout - 20ms);
    EXPECT_LT(took, 700ms);
  }
  // Three timeouts in a row: the server is marked down and calls fail at once.
  auto took = timed([&] { EXPECT_FALSE(cache_->set("k", "v2")); });
  EXPECT_LT(took, 50ms);
  server_->resume();
  took = until_served([&] { return cache_->get("k") == "v"; });
  EXPECT_LT(took, kRetryInterval + 1s) << "service resumes at the breaker's next probe";
}

// Without a breaker every call against a frozen server waited the whole timeout, and each
// left a connection attempt in the server's listen backlog that the postmaster had to work
// through before serving anyone once thawed.
TEST_F(PostgresFault, AFrozenServerIsMarkedDownAndLaterCallsFailFast) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_->pause();
  for (int i = 0; i < 3; ++i) {  // down_after_failures (3) timeouts in a row
    EXPECT_STATUS(cache_->strict().get("k"), StatusCode::kDeadlineExceeded);
  }
  for (int i = 0; i < 20; ++i) {
    Result<std::optional<Bytes>> got = std::optional<Bytes>{};
    auto took = timed([&] { got = cache_->strict().get("k"); });
    EXPECT_STATUS(got, StatusCode::kUnavailable);
    EXPECT_NE(got.status().message().find("marked down"), std::string::npos)
        << got.status().to_string();
    EXPECT_LT(took, 50ms) << "call " << i << " waited for the frozen server";
  }
  server_->resume();
}

TEST_F(PostgresFault, ServiceResumesAfterARestartWithoutANewBackend) {
  // Several pooled connections, all of which the restart kills.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] { cache_->set("k" + std::to_string(t), "v"); });
  }
  for (auto& t : threads) t.join();
  server_->shutdown();
  EXPECT_FALSE(cache_->get("k0").has_value());
  server_->restart();
  // The refused connect marked the server down: the breaker's next probe finds it again.
  EXPECT_LT(until_served([&] { return cache_->strict().get("k0").ok(); }), kRetryInterval + 1s);
  // Stale pooled connections are noticed and replaced: no call fails once it is found.
  for (int t = 0; t < 4; ++t) {
    auto got = cache_->strict().get("k" + std::to_string(t));
    ASSERT_OK(got);
    EXPECT_EQ(*got, "v");
  }
  auto n = cache_->strict().set("n", "1");
  EXPECT_OK(n);
  EXPECT_EQ(*cache_->strict().incr("n"), 2);
}

TEST_F(PostgresFault, ServiceResumesAfterACrash) {
  ASSERT_TRUE(cache_->set("k", "v"));
  server_->kill();  // SIGKILL: connections reset, no goodbye from the server
  auto took = timed([&] { EXPECT_FALSE(cache_->get("k").has_value()); });
  EXPECT_LT(took, 700ms);
  server_->restart();  // crash recovery
  EXPECT_LT(until_served([&] { return cache_->strict().get("k").ok(); }), kRetryInterval + 1s);
  auto got = cache_->strict().get("k");
  ASSERT_OK(got);
  EXPECT_TRUE(cache_->set("k2", "v2"));
  EXPECT_EQ(cache_->get("k2"), "v2");
}

TEST_F(PostgresFault, AServerFrozenMidCallLeavesNoBrokenConnectionBehind) {
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0};
  std::latch each_served_once{3};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      bool counted = false;
      while (!stop) {
        const bool ok = cache_->strict().set("busy", "v").ok();
        errors += ok ? 0 : 1;
        if (ok && !counted) {
          counted = true;
          each_served_once.count_down();
        }
      }
    });
  }
  each_served_once.wait();  // every thread is mid-stream when the server freezes
  server_->pause();
  std::this_thread::sleep_for(400ms);
  server_->resume();
  stop = true;
  for (auto& t : threads) t.join();
  EXPECT_GT(errors.load(), 0) << "calls during the freeze time out";
  EXPECT_LT(until_served([&] { return cache_->strict().set("after", "-1").ok(); }),
            kRetryInterval + 1s);
  for (int i = 0; i < 10; ++i) {
    ASSERT_OK(cache_->strict().set("after", std::to_string(i))) << "call " << i;
  }
  EXPECT_EQ(cache_->get("after"), "9");
}

}  // namespace
}  // namespace cachekit
