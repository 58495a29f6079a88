// Failovers under load, on private servers (a primary, a replica, sentinels): the backend
// follows the primary the sentinels elect, calls stay bounded during the window (the Cache
// façade turns their errors into misses and failed writes), and caching resumes on the new
// primary without a restart. The fail-open window is measured and printed.
//
// Sentinels learn of a replica from the primary's INFO about every 10 s; until then a failover
// answers NOGOODSLAVE, so each test first polls (with a deadline) until they know it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <latch>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "backends/redis/sentinel_test_support.h"
#include "cachekit/backends/redis.h"
#include "cachekit/backends/tiered.h"
#include "cachekit/cache.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using testing::PrivateSentinels;
using testing::RawRedis;

constexpr auto kTimeout = 200ms;  // connect and io
// The longest a call may take: a pool wait, a connect and a read, with scheduling slack.
constexpr auto kCallBound = 3 * kTimeout + 600ms;

std::map<std::string, std::string> stats_of(Backend& backend) {
  auto s = backend.stats();
  if (!s.ok()) return {};
  return {s->begin(), s->end()};
}

// Threads writing and reading through a Cache until stopped, each at most once a millisecond
// (a site's steady traffic, not a busy loop starving the servers of the 2 cores), recording
// when calls failed and the longest call.
class Load {
 public:
  Load(Cache& cache, int threads) : cache_(cache), started_(threads + 1) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, t] { run(t); });
    }
    started_.arrive_and_wait();
  }
  ~Load() { stop(); }
  void stop() {
    stopping_ = true;
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  // The span from the first to the last failed call at or after `since` (zero: none failed).
  std::chrono::milliseconds window_since(SteadyClock::time_point since) {
    std::lock_guard lock(mutex_);
    std::vector<SteadyClock::time_point> in;
    std::copy_if(failures_.begin(), failures_.end(), std::back_inserter(in),
                 [&](auto t) { return t >= since; });
    if (in.empty()) return 0ms;
    auto [first, last] = std::minmax_element(in.begin(), in.end());
    return std::chrono::duration_cast<std::chrono::milliseconds>(*last - *first);
  }
  std::chrono::milliseconds longest_call() const {
    return std::chrono::milliseconds(longest_ms_.load());
  }
  long calls() const { return calls_.load(); }
  long failed_calls() {
    std::lock_guard lock(mutex_);
    return static_cast<long>(failures_.size());
  }

 private:
  void run(int t) {
    started_.arrive_and_wait();
    auto next = SteadyClock::now();
    for (long i = 0; !stopping_; ++i) {
      next += 1ms;
      std::this_thread::sleep_until(next);
      std::string key = "load" + std::to_string(t) + ":" + std::to_string(i % 100);
      auto start = SteadyClock::now();
      bool ok = cache_.set(key, "v");  // the façade: false on failure, never a throw
      if (ok) ok = cache_.get(key).has_value();
      auto end = SteadyClock::now();
      calls_.fetch_add(2);
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(end - start).count();
      long seen = longest_ms_.load();
      while (ms > seen && !longest_ms_.compare_exchange_weak(seen, ms)) {
      }
      if (!ok) {
        std::lock_guard lock(mutex_);
        failures_.push_back(end);
      }
    }
  }

  Cache& cache_;
  std::latch started_;
  std::atomic<bool> stopping_{false};
  std::atomic<long> longest_ms_{0};
  std::atomic<long> calls_{0};
  std::mutex mutex_;
  std::vector<SteadyClock::time_point> failures_;
  std::vector<std::thread> threads_;
};

std::string role_of(int port) {
  try {
    RawRedis raw("127.0.0.1", port);
    auto reply = raw.command({"ROLE"});
    return reply.elements.empty() ? "" : reply.elements[0].str;
  } catch (const std::exception&) {
    return "";
  }
}

// Writes through `cache` until one lands on the server at `port` (database 2) while it is a
// primary, checked with a plain client there. A fresh value each time: a replica shows what
// its primary was given, so only a value written after its promotion proves the write went
// to it. How long it took, or nullopt past the deadline.
std::optional<std::chrono::milliseconds> until_writes_land_on(Cache& cache, const std::string& ns,
                                                              int port,
                                                              std::chrono::seconds deadline) {
  auto start = SteadyClock::now();
  int attempt = 0;
  bool landed = PrivateSentinels::eventually(
      [&] {
        if (role_of(port) != "master") return false;
        std::string value = std::to_string(port) + "-" + std::to_string(++attempt);
        if (!cache.set("probe", value)) return false;
        try {
          RawRedis raw("127.0.0.1", port, 2);
          return raw.command({"GET", ns + ":1:probe"}).str == value;
        } catch (const std::exception&) {
          return false;
        }
      },
      deadline);
  if (!landed) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
}

// How long after `since` sentinel 0 first names the server at `port` as the primary (polled
// every 10 ms, on its own thread so that it runs while the test waits for writes to land).
class SwitchClock {
 public:
  SwitchClock(PrivateSentinels& servers, int port, SteadyClock::time_point since)
      : thread_([this, &servers, port, since] {
          auto deadline = SteadyClock::now() + 30s;
          while (SteadyClock::now() < deadline && servers.primary_port(0) != port) {
            std::this_thread::sleep_for(10ms);
          }
          took_ = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - since);
        }) {}
  std::chrono::milliseconds took() {
    if (thread_.joinable()) thread_.join();
    return took_;
  }
  ~SwitchClock() { (void)took(); }

 private:
  std::chrono::milliseconds took_{0};
  std::thread thread_;
};

// The sentinels list `port` as a replica that is up and linked to its primary.
bool listed_as_good_replica(PrivateSentinels& servers, std::size_t sentinel, int port) {
  try {
    RawRedis raw("127.0.0.1", servers.sentinel(sentinel).port());
    for (const auto& replica : raw.command({"SENTINEL", "replicas", "mymaster"}).elements) {
      std::map<std::string, std::string> fields;
      for (std::size_t i = 0; i + 1 < replica.elements.size(); i += 2) {
        fields[replica.elements[i].str] = replica.elements[i + 1].str;
      }
      if (fields["port"] == std::to_string(port) && fields["flags"] == "slave" &&
          fields["master-link-status"] == "ok") {
        return true;
      }
    }
  } catch (const std::exception&) {
  }
  return false;
}

std::shared_ptr<Backend> make_backend(const std::string& url) {
  auto backend = make_redis_backend({.locations = {url},
                                     .connect_timeout = kTimeout,
                                     .io_timeout = kTimeout,
                                     .pool_wait = kTimeout,
                                     .retry_after = 200ms});
  EXPECT_OK(backend);
  return backend.ok() ? *backend : nullptr;
}

TEST(SentinelFailover, ManualThenKilledPrimaryUnderLoadFailsOpenAndResumes) {
  PrivateSentinels servers(3);
  ASSERT_TRUE(servers.wait_until_ready()) << "the sentinels never listed the replica";
  auto backend = make_backend(servers.url(2));
  ASSERT_NE(backend, nullptr);
  const std::string ns = "shop";
  Cache cache(backend, {.key_prefix = ns, .max_error_logs_per_second = 0});
  ASSERT_TRUE(cache.set("before", "v"));
  const int first = servers.primary().port(), second = servers.replica().port();
  Load load(cache, 4);

  // 1. A manual failover: the replica is promoted, the old primary demoted.
  auto t1 = SteadyClock::now();
  SwitchClock switch1(servers, second, t1);
  RawRedis sentinel("127.0.0.1", servers.sentinel(0).port());
  ASSERT_EQ(sentinel.command({"SENTINEL", "FAILOVER", "mymaster"}).str, "OK");
  auto resumed1 = until_writes_land_on(cache, ns, second, 30s);
  ASSERT_TRUE(resumed1.has_value()) << "writes never reached the promoted replica";
  auto window1 = load.window_since(t1);
  std::cout << "manual failover: sentinels named the new primary after " << switch1.took().count()
            << " ms, writes landed on it after " << resumed1->count() << " ms; fail-open window "
            << window1.count() << " ms\n";
  ::testing::Test::RecordProperty("manual_failover_window_ms", static_cast<int>(window1.count()));
  EXPECT_EQ(stats_of(*backend)["server"], "127.0.0.1:" + std::to_string(second) + "/2");

  // 2. The new primary killed (-9) once the old one serves as its replica again.
  ASSERT_TRUE(PrivateSentinels::eventually(
      [&] {
        for (std::size_t i = 0; i < 3; ++i) {
          if (!listed_as_good_replica(servers, i, first)) return false;
        }
        return true;
      },
      40s))
      << "the old primary never came back as a replica";
  auto t2 = SteadyClock::now();
  SwitchClock switch2(servers, first, t2);
  servers.replica().kill();
  auto resumed2 = until_writes_land_on(cache, ns, first, 30s);
  ASSERT_TRUE(resumed2.has_value()) << "writes never reached the primary elected after the kill";
  auto window2 = load.window_since(t2);
  auto elected2 = switch2.took();
  std::cout << "killed primary: sentinels named the new primary after " << elected2.count()
            << " ms (down-after 1000 ms), writes landed on it after " << resumed2->count()
            << " ms; fail-open window " << window2.count() << " ms\n";
  ::testing::Test::RecordProperty("killed_primary_window_ms", static_cast<int>(window2.count()));
  load.stop();

  // No call hung: each was bounded by its timeouts, and none threw (the façade).
  EXPECT_LT(load.longest_call(), kCallBound);
  std::cout << load.calls() << " calls, " << load.failed_calls() << " failed open, longest "
            << load.longest_call().count() << " ms\n";
  // The sentinels' election takes what it takes (down-after, agreement, promotion); what the
  // backend adds once they name the new primary is at most a second.
  EXPECT_LT(window2, 10s);
  EXPECT_LT(*resumed2 - elected2, 1s);
  auto s = stats_of(*backend);
  EXPECT_EQ(s["server"], "127.0.0.1:" + std::to_string(first) + "/2");
  EXPECT_EQ(s["sentinel.primaries_followed"], "2");
  EXPECT_THAT(std::string(cache.get("probe").value_or(Bytes("")).view()),
              ::testing::StartsWith(std::to_string(first) + "-"));
}

// A sentinel that refuses SUBSCRIBE (an ACL) never announces the switch: the backend learns of
// it only from the demoted primary's READONLY answers, and follows.
TEST(SentinelFailover, ReadonlyFromTheDemotedPrimaryFindsTheNewOne) {
  PrivateSentinels servers(1, "user default on nopass ~* &* +@all -subscribe");
  ASSERT_TRUE(servers.wait_until_ready()) << "the sentinel never listed the replica";
  auto backend = make_backend(servers.url(2));
  ASSERT_NE(backend, nullptr);
  const int first = servers.primary().port(), second = servers.replica().port();
  ASSERT_OK(backend->set("k", "v", Expiry::never()));
  RawRedis sentinel("127.0.0.1", servers.sentinel(0).port());
  ASSERT_EQ(sentinel.command({"SENTINEL", "FAILOVER", "mymaster"}).str, "OK");
  ASSERT_TRUE(PrivateSentinels::eventually([&] { return role_of(first) == "slave"; }, 30s))
      << "the old primary was never demoted";
  bool saw_readonly = false;
  ASSERT_TRUE(PrivateSentinels::eventually(
      [&] {
        Status s = backend->set("k", "after", Expiry::never());
        if (s.message().find("READONLY") != std::string::npos) saw_readonly = true;
        return s.ok();
      },
      5s))
      << "the backend never left the demoted primary";
  EXPECT_TRUE(saw_readonly);
  RawRedis promoted("127.0.0.1", second, 2);
  EXPECT_EQ(promoted.command({"GET", "k"}).str, "after");
  auto s = stats_of(*backend);
  EXPECT_EQ(s["server"], "127.0.0.1:" + std::to_string(second) + "/2");
  EXPECT_EQ(s["sentinel.subscriptions"], "0");  // nothing was announced to it
  EXPECT_EQ(s["sentinel.primaries_followed"], "1");
}

// A two-tier cache in front of a Sentinel-followed primary keeps its change feed across a
// failover: the feed moves to the new primary, and a write there by another client (a raw
// SET) drops the local copy, although copies may live 5 minutes (coherence = changes).
TEST(SentinelFailover, ATieredCacheFeedFollowsThePrimaryAcrossAFailover) {
  PrivateSentinels servers(3);
  ASSERT_TRUE(servers.wait_until_ready()) << "the sentinels never listed the replica";
  auto shared = make_backend(servers.url(2));
  ASSERT_NE(shared, nullptr);
  auto made =
      make_tiered_backend(TieredOptions{.shared = shared, .coherence = TierCoherence::kChanges});
  ASSERT_OK(made);
  Backend& tiers = **made;
  const int first = servers.primary().port(), second = servers.replica().port();
  auto stat = [&](const std::string& name) { return stats_of(tiers)[name]; };
  auto read = [&] {
    auto value = tiers.get("k");
    return value.ok() && value->has_value() ? std::string((*value)->view()) : "<none>";
  };
  ASSERT_TRUE(PrivateSentinels::eventually([&] { return stat("feed_live") == "yes"; }, 10s));
  ASSERT_OK(tiers.set("k", "before", Expiry::never()));
  RawRedis sentinel("127.0.0.1", servers.sentinel(0).port());
  ASSERT_EQ(sentinel.command({"SENTINEL", "FAILOVER", "mymaster"}).str, "OK");
  ASSERT_TRUE(PrivateSentinels::eventually(
      [&] { return role_of(second) == "master" && role_of(first) == "slave"; }, 30s))
      << "the failover never completed";
  // The backend follows, and its feed with it: live again, on the new primary.
  ASSERT_TRUE(PrivateSentinels::eventually(
      [&] {
        return stats_of(*shared)["server"] == "127.0.0.1:" + std::to_string(second) + "/2" &&
               stat("feed_live") == "yes";
      },
      10s));
  ASSERT_TRUE(PrivateSentinels::eventually([&] { return read() == "before"; }, 5s));
  const std::string local_before = stat("local_hits");
  EXPECT_EQ(read(), "before");  // a local copy now
  EXPECT_NE(stat("local_hits"), local_before);
  RawRedis promoted("127.0.0.1", second, 2);
  promoted.command({"SET", "k", "after"});
  EXPECT_TRUE(PrivateSentinels::eventually([&] { return read() == "after"; }, 2s))
      << "the local copy outlived a write on the new primary";
}

}  // namespace
}  // namespace cachekit
