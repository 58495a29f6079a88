// get_or_set across processes: two Cache objects on separate backend instances of one real
// store (what two processes see) load a key once; the lease of a holder killed with SIGKILL
// expires and another process takes over. Needs the servers of scripts/test-servers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "cachekit/backends/memcached.h"
#include "cachekit/backends/redis.h"
#include "cachekit/backends/sql.h"
#include "cachekit/cache.h"
#include "cachekit/lease.h"
#include "cachekit/refresh.h"
#include "support/redis_test_support.h"
#include "support/sql_test_support.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct Store {
  std::string name;
  // A new backend instance (its own connections) on the shared store; `tag` names a table.
  std::function<std::shared_ptr<Backend>(const std::string& tag)> make;
};

std::shared_ptr<Backend> redis(const std::string&) {
  return *make_redis_backend({.locations = {testing::shared_redis_url()}});
}
std::shared_ptr<Backend> memcached(const std::string&) {
  const char* servers = std::getenv("CACHEKIT_TEST_MEMCACHED");
  MemcachedOptions options;
  options.servers = *parse_memcached_locations(servers != nullptr ? servers : "");
  return *make_memcached_backend(options);
}
std::shared_ptr<Backend> postgres(const std::string& tag) {
  sql_testing::BackendSetup setup{.table = "fleet " + tag};
  return sql_testing::make_backend(sql_testing::Engine::kPostgres, {}, setup);
}

CacheOptions fleet_options(const std::string& prefix) {
  return {
      .key_prefix = prefix, .lease_ttl = milliseconds(1500), .lease_wait = milliseconds(10'000)};
}

template <class F>
void wait_until(F done) {
  const auto deadline = steady_clock::now() + std::chrono::seconds(20);
  while (!done() && steady_clock::now() < deadline) std::this_thread::yield();
}

struct Fleet : ::testing::TestWithParam<Store> {
  std::string prefix = testing::unique_namespace("fleet");
  std::string tag = std::to_string(::getpid()) + "-" +
                    std::to_string(steady_clock::now().time_since_epoch().count() % 1'000'000);
};

TEST_P(Fleet, TwoProcessesMissingOneKeyLoadItOnce) {
  Cache first(GetParam().make(tag), fleet_options(prefix));
  Cache second(GetParam().make(tag), fleet_options(prefix));
  std::atomic<int> loader_calls{0};
  Bytes a, b;
  std::jthread leader([&] {
    a = first.get_or_set("k", [&] {
      ++loader_calls;
      wait_until([&] { return second.stats().lease_waits == 1; });  // the other waits on us
      return std::string("from first");
    });
  });
  wait_until([&] { return loader_calls.load() == 1; });
  b = second.get_or_set("k", [&] {
    ++loader_calls;
    return std::string("from second");
  });
  leader.join();
  EXPECT_EQ(loader_calls.load(), 1);
  EXPECT_EQ(a.view(), "from first");
  EXPECT_EQ(b.view(), "from first");
  EXPECT_EQ(second.stats().lease_waits, 1u);
}

TEST_P(Fleet, TheLeaseOfAHolderKilledWithSigkillExpiresAndAnotherProcessTakesOver) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const auto forked = steady_clock::now();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // the holder: claims the lease, says so, and hangs until killed
    Cache holder(GetParam().make(tag), fleet_options(prefix));
    auto lease = Lease::try_acquire(holder, Cache::lease_name("k"), milliseconds(1500));
    char held = lease.ok() && lease->held() ? 'y' : 'n';
    (void)!::write(ready[1], &held, 1);
    for (;;) ::pause();
  }
  char held = 0;
  ASSERT_EQ(::read(ready[0], &held, 1), 1);
  ::close(ready[0]);
  ::close(ready[1]);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ASSERT_EQ(held, 'y');

  Cache taker(GetParam().make(tag), fleet_options(prefix));
  steady_clock::time_point loaded_at{};
  Bytes v = taker.get_or_set("k", [&] {
    loaded_at = steady_clock::now();
    return std::string("taken over");
  });
  EXPECT_EQ(v.view(), "taken over");
  // Not before the dead holder's lease (claimed after the fork) expired; soon after it.
  EXPECT_GE(loaded_at - forked, milliseconds(1500 - 20));
  EXPECT_LT(loaded_at - forked, milliseconds(5000));
  EXPECT_EQ(taker.stats().lease_waits, 1u);
  EXPECT_EQ(taker.stats().lease_takeovers, 1u);
}

// get_or_refresh's background refresh of a stale value, across processes: each process starts
// one, and the lease lets only one of them call the loader; both serve the stale value at once.
TEST_P(Fleet, TwoProcessesReadingAStaleKeyRefreshItOnce) {
  const RefreshPolicy policy{.fresh_for = milliseconds(300),
                             .stale_while_revalidate = std::chrono::seconds(60)};
  std::atomic<int> loader_calls{0};
  std::atomic<bool> release{false};
  auto loader = [&] {
    const int n = ++loader_calls;
    if (n > 1) wait_until([&] { return release.load(); });  // a refresh: held until released
    return "v" + std::to_string(n);
  };
  auto first = std::make_unique<Cache>(GetParam().make(tag), fleet_options(prefix));
  auto second = std::make_unique<Cache>(GetParam().make(tag), fleet_options(prefix));
  const auto loaded = steady_clock::now();
  ASSERT_EQ(first->get_or_refresh("k", loader, policy).view(), "v1");
  wait_until([&] { return steady_clock::now() - loaded > milliseconds(400); });  // now stale

  EXPECT_EQ(first->get_or_refresh("k", loader, policy).view(), "v1");  // starts the refresh
  wait_until([&] { return loader_calls.load() == 2; });  // which holds the lease from here on
  EXPECT_EQ(second->get_or_refresh("k", loader, policy).view(), "v1");  // stale, at once
  // Its refresh task finds the lease held and leaves the key to the holder.
  wait_until([&] { return second->stats().refreshes_skipped == 1; });
  EXPECT_EQ(second->stats().refreshes_skipped, 1u);
  second.reset();
  EXPECT_EQ(loader_calls.load(), 2);
  release = true;
  wait_until([&] { return first->stats().refreshes == 1; });
  EXPECT_EQ(first->stats().refreshes, 1u);
  first.reset();
  EXPECT_EQ(loader_calls.load(), 2);  // the first load and one refresh for the fleet

  Cache third(GetParam().make(tag), fleet_options(prefix));
  EXPECT_EQ(third.get_or_refresh("k", loader, policy).view(), "v2");
}

INSTANTIATE_TEST_SUITE_P(Stores, Fleet,
                         ::testing::Values(Store{"redis", redis}, Store{"memcached", memcached},
                                           Store{"postgres", postgres}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace cachekit
