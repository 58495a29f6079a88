// Unit tests of the memcached backend: location parsing, expiry arithmetic, server health, and
// the backend's memcached-specific behaviour against private memcached processes (each test
// starts its own, so nothing here flushes or fills a server another test uses). The shared
// servers (CACHEKIT_TEST_MEMCACHED) get a round trip that leaves no trace.
#include <cachekit/backends/memcached.h>
#include <cachekit/cache.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libmemcached/memcached.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "backends/memcached/exptime.h"
#include "backends/memcached/server_address.h"
#include "backends/memcached/server_health.h"
#include "support/memcached_server.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::location_of;
using testing::ServerProcess;
using testing::start_memcached;

// ---- locations ----

TEST(MemcachedLocations, AcceptsDjangosForms) {
  EXPECT_THAT(*parse_memcached_locations("10.0.0.1:11211;10.0.0.2:11212, cache3 ,"),
              ElementsAre("10.0.0.1:11211", "10.0.0.2:11212", "cache3:11211"));
  EXPECT_THAT(*parse_memcached_locations("unix:/run/mc.sock"), ElementsAre("unix:/run/mc.sock"));
  EXPECT_THAT(*parse_memcached_locations("/run/mc.sock"), ElementsAre("unix:/run/mc.sock"));
  EXPECT_THAT(*parse_memcached_locations("[::1]:11212,[fe80::1]"),
              ElementsAre("[::1]:11212", "[fe80::1]:11211"));
  EXPECT_THAT(*parse_memcached_locations("memcached://a:1,b:2"), ElementsAre("a:1", "b:2"));
  EXPECT_THAT(*parse_memcached_locations("MEMCACHED://a"), ElementsAre("a:11211"));
}

TEST(MemcachedLocations, RefusesBadOnesByName) {
  for (const char* bad : {"h:0", "h:65536", "h:abc", "h:", "::1:11211", "unix:relative", ":11211",
                          "[::1", "[::1]x"}) {
    auto r = parse_memcached_locations(bad);
    EXPECT_STATUS(r, StatusCode::kInvalidArgument) << bad;
    if (!r.ok()) {
      EXPECT_THAT(r.status().message(), HasSubstr("bad memcached server")) << bad;
    }
  }
  EXPECT_STATUS(parse_memcached_locations("memcached://"), StatusCode::kInvalidArgument);
  EXPECT_STATUS(parse_memcached_locations(" ; "), StatusCode::kInvalidArgument);
}

TEST(MemcachedLocations, FactoryRefusesBadOptions) {
  EXPECT_STATUS(make_memcached_backend({}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_memcached_backend({.servers = {"h:0"}}), StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_memcached_backend({.servers = {"h"}, .io_timeout = 0ms}),
                StatusCode::kInvalidArgument);
  EXPECT_STATUS(make_memcached_backend({.servers = {"h"}, .pool_size = 0}),
                StatusCode::kInvalidArgument);
  EXPECT_OK(make_memcached_backend({.servers = {"localhost:1"}})) << "connects lazily";
}

// ---- expiry arithmetic ----

const TimePoint kNow = TimePoint(std::chrono::hours(24 * 365 * 50));  // the injected clock
const TimePoint kRealNow = TimePoint(std::chrono::seconds(1'800'000'000) + 250ms);

TEST(MemcachedExpiry, NeverIsZeroAndThePastIsExpired) {
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::never(), kNow, kRealNow), 0);
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow), kNow, kRealNow), std::nullopt);
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow - 1s), kNow, kRealNow), std::nullopt);
}

TEST(MemcachedExpiry, RoundsUpAndAddsTheServersTickSoNothingEndsEarly) {
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + 1ms), kNow, kRealNow), 2);
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + 1000ms), kNow, kRealNow), 2);
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + 1500ms), kNow, kRealNow), 3);
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + 300s), kNow, kRealNow), 301);
}

TEST(MemcachedExpiry, BeyondThirtyDaysIsAnAbsoluteTimeOnTheRealClock) {
  constexpr std::int64_t kThirtyDays = 30 * 24 * 3600;
  EXPECT_EQ(memcached_internal::exptime_for(
                Expiry::at(kNow + std::chrono::seconds(kThirtyDays - 1)), kNow, kRealNow),
            kThirtyDays);
  // One second more no longer fits: real now (1'800'000'000.25) + 30 days, rounded up, + 1.
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + std::chrono::seconds(kThirtyDays)),
                                            kNow, kRealNow),
            1'800'000'000 + kThirtyDays + 1 + 1);
  // Past 2106 the 32-bit exptime would wrap into the past: such an expiry is "never".
  EXPECT_EQ(memcached_internal::exptime_for(Expiry::at(kNow + 100 * 366 * 24h), kNow, kRealNow), 0);
  EXPECT_EQ(memcached_internal::exptime_for_remaining(-1, kRealNow), 0);
  EXPECT_EQ(memcached_internal::exptime_for_remaining(100, kRealNow), 100);
  EXPECT_EQ(memcached_internal::exptime_for_remaining(kThirtyDays + 5, kRealNow),
            1'800'000'001 + kThirtyDays + 5);
}

TEST(MemcachedExpiry, MetaTtlIsReportedAsItsLowerBound) {
  EXPECT_EQ(memcached_internal::ttl_from_meta(-1), Ttl::never());
  EXPECT_EQ(memcached_internal::ttl_from_meta(101), Ttl::after(100s));
  EXPECT_EQ(memcached_internal::ttl_from_meta(1), Ttl::after(1ms));  // live, if only just
}

// ---- server health ----

TEST(MemcachedServerHealth, SkipsAfterTheLimitThenLetsOneProbeThrough) {
  memcached_internal::ServerHealth health(2, 2, 1000ms);
  auto t = std::chrono::steady_clock::time_point(10s);
  EXPECT_TRUE(health.all_healthy());
  health.record_timeout(1, t);
  EXPECT_FALSE(health.all_healthy());
  EXPECT_TRUE(health.admit(1, t)) << "one timeout is not enough";
  health.record_timeout(1, t);
  EXPECT_FALSE(health.admit(1, t + 999ms));
  EXPECT_TRUE(health.admit(0, t)) << "the other server is unaffected";
  EXPECT_TRUE(health.admit(1, t + 1001ms)) << "the probe";
  EXPECT_FALSE(health.admit(1, t + 1002ms)) << "only one probe per period";
  health.record_success(1);
  EXPECT_TRUE(health.all_healthy());
  EXPECT_TRUE(health.admit(1, t + 1003ms));
}

TEST(MemcachedServerHealth, AProbeThatNeverReportsDoesNotWedgeTheServer) {
  memcached_internal::ServerHealth health(1, 1, 1000ms);
  auto t = std::chrono::steady_clock::time_point(10s);
  health.record_timeout(0, t);
  EXPECT_TRUE(health.admit(0, t + 1001ms));  // a probe that is then lost
  EXPECT_FALSE(health.admit(0, t + 1500ms));
  EXPECT_TRUE(health.admit(0, t + 2002ms));  // the next period probes again
}

// ---- the backend on private servers ----

class MemcachedPrivate : public ::testing::Test {
 protected:
  void SetUp() override { backend_ = make({location_of(first_), location_of(second_)}); }

  std::shared_ptr<Backend> make(std::vector<std::string> servers, const Clock* clock = nullptr) {
    auto backend = make_memcached_backend(
        {.servers = std::move(servers), .connect_timeout = 2s, .io_timeout = 2s, .clock = clock});
    EXPECT_OK(backend);
    return backend.ok() ? *backend : nullptr;
  }
  std::map<std::string, std::string> stats() {
    auto s = backend_->stats();
    EXPECT_OK(s);
    return s.ok() ? std::map<std::string, std::string>(s->begin(), s->end())
                  : std::map<std::string, std::string>();
  }
  std::string value_of(std::string_view key) {
    auto v = backend_->get(key);
    return v.ok() && v->has_value() ? (*v)->str() : "<missing>";
  }

  ServerProcess first_ = start_memcached();
  ServerProcess second_ = start_memcached();
  std::shared_ptr<Backend> backend_;
};

TEST_F(MemcachedPrivate, KetamaSpreadsKeysOverBothServers) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK(backend_->set("key:" + std::to_string(i), "v", Expiry::never()));
  }
  auto s = stats();
  int on_first = std::stoi(s.at(location_of(first_) + ".curr_items"));
  int on_second = std::stoi(s.at(location_of(second_) + ".curr_items"));
  EXPECT_EQ(on_first + on_second, 1000);
  EXPECT_GT(on_first, 350);
  EXPECT_GT(on_second, 350);
  EXPECT_EQ(s.at("curr_items"), "1000");
}

TEST_F(MemcachedPrivate, AddingAThirdServerMovesAboutAThirdOfTheKeys) {
  for (int i = 0; i < 1000; ++i) {
    ASSERT_OK(backend_->set("key:" + std::to_string(i), "v", Expiry::never()));
  }
  ServerProcess third = start_memcached();
  auto wider = make({location_of(first_), location_of(second_), location_of(third)});
  int moved = 0;
  for (int i = 0; i < 1000; ++i)
    moved += wider->get("key:" + std::to_string(i))->has_value() ? 0 : 1;
  // Consistent hashing moves ~1/3 (the new server's share); modulo hashing would move ~2/3.
  EXPECT_GT(moved, 200);
  EXPECT_LT(moved, 450);
}

TEST_F(MemcachedPrivate, HostileKeysAreRefusedWithDjangosMessage) {
  Cache cache(backend_);
  EXPECT_EQ(backend_->info().key_policy, KeyPolicy::kRefuse);
  auto too_long = cache.strict().set(std::string(248, 'k'), "v");  // ":1:" + 248 = 251 bytes
  EXPECT_STATUS(too_long, StatusCode::kInvalidArgument);
  EXPECT_EQ(too_long.message(), "Cache key will cause errors if used with memcached: ':1:" +
                                    std::string(248, 'k') + "' (longer than 250)");
  auto spaced = cache.strict().set("has space", "v");
  EXPECT_EQ(spaced.message(),
            "Cache key contains characters that will cause errors if used with memcached: "
            "':1:has space'");
  EXPECT_FALSE(cache.set("tab\there", "v"));
  EXPECT_TRUE(cache.set(std::string(247, 'k'), "v")) << "250 bytes is still fine";
  EXPECT_EQ(cache.get(std::string(247, 'k'))->view(), "v");
}

TEST_F(MemcachedPrivate, ValueOverTheItemLimitFailsAndTheOldValueIsGone) {
  ASSERT_OK(backend_->set("session", "old", Expiry::never()));
  std::string big((1 << 20) + 1, 'x');
  Status s = backend_->set("session", big, Expiry::never());
  EXPECT_STATUS(s, StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("item size limit"));
  EXPECT_EQ(value_of("session"), "<missing>") << "a stale value must not be served";
  Cache cache(backend_);
  cache.set("page", "old");
  EXPECT_FALSE(cache.set("page", big));
  EXPECT_FALSE(cache.get("page").has_value());
  EXPECT_STATUS(backend_->add("fresh", big, Expiry::never()), StatusCode::kResourceExhausted);
}

TEST_F(MemcachedPrivate, SetManyReportsExactlyTheFailedIndices) {
  std::string big((1 << 20) + 100, 'b');
  for (const char* k : {"a", "b", "c", "d", "e"}) ASSERT_OK(backend_->set(k, "old", {}));
  std::vector<KeyValue> items{{"a", "1"}, {"b", big}, {"c", "3"}, {"d", big}, {"e", ""}};
  auto failed = backend_->set_many(items, Expiry::never());
  ASSERT_OK(failed);
  EXPECT_THAT(*failed, ElementsAre(1u, 3u));
  EXPECT_EQ(value_of("a"), "1");
  EXPECT_EQ(value_of("b"), "<missing>");
  EXPECT_EQ(value_of("c"), "3");
  EXPECT_EQ(value_of("d"), "<missing>");
  EXPECT_EQ(value_of("e"), "");
  Cache cache(backend_);
  EXPECT_THAT(cache.set_many(std::map<std::string, std::string>{{"x", "1"}, {"y", big}}),
              ElementsAre("y"));
}

TEST_F(MemcachedPrivate, TimeoutsBeyondThirtyDaysAreStoredAbsoluteAndStillReadable) {
  ManualClock clock;  // 2020: years away from the real clock the server compares with
  backend_ = make({location_of(first_), location_of(second_)}, &clock);
  Cache cache(backend_, {.clock = &clock});
  ASSERT_TRUE(cache.set("month", "m", 40 * 24h));
  ASSERT_TRUE(cache.set("year", "y", 365 * 24h));
  EXPECT_EQ(cache.get("month")->view(), "m");
  EXPECT_EQ(cache.get("year")->view(), "y");
  Ttl t = cache.ttl("month");
  ASSERT_TRUE(t.expires());
  EXPECT_GT(t.remaining(), 40 * 24h - 10s);
  EXPECT_LE(t.remaining(), 40 * 24h + 2s);
  ASSERT_TRUE(cache.touch("month", 31 * 24h));
  EXPECT_LE(cache.ttl("month").remaining(), 31 * 24h + 2s);
  EXPECT_EQ(cache.get("month")->view(), "m");
}

TEST_F(MemcachedPrivate, TtlComesFromTheServer) {
  EXPECT_EQ(*backend_->ttl("nope"), Ttl::missing());
  ASSERT_OK(backend_->set("forever", "v", Expiry::never()));
  EXPECT_EQ(*backend_->ttl("forever"), Ttl::never());
  Cache cache(backend_);
  cache.set("k", "v", 100);
  Ttl t = cache.ttl("k");
  ASSERT_TRUE(t.expires());
  EXPECT_GE(t.remaining(), 98s);
  EXPECT_LE(t.remaining(), 100s);
}

TEST_F(MemcachedPrivate, IncrIsSigned64BitArithmetic) {
  Cache cache(backend_);
  cache.set("n", 5);
  EXPECT_EQ(*cache.incr("n", -10), -5) << "below zero, where native decr would clamp";
  EXPECT_EQ(*cache.incr("n", 3), -2) << "native incr refuses a negative value";
  EXPECT_EQ(*cache.incr("n", 2), 0);
  EXPECT_EQ(*cache.decr("n", 7), -7);
  EXPECT_EQ(cache.get("n")->view(), "-7");
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  cache.set("max", kMax);
  EXPECT_STATUS(cache.incr("max"), StatusCode::kOutOfRange);
  EXPECT_EQ(cache.get("max")->view(), std::to_string(kMax)) << "the value is put back";
  EXPECT_EQ(*cache.decr("max", kMax), 0);
  cache.set("min", kMin);
  EXPECT_STATUS(cache.decr("min"), StatusCode::kOutOfRange);
  EXPECT_EQ(cache.get("min")->view(), std::to_string(kMin));
  cache.set("text", "abc");
  EXPECT_STATUS(cache.incr("text"), StatusCode::kFailedPrecondition);
  EXPECT_STATUS(cache.incr("text", -1), StatusCode::kFailedPrecondition);
  EXPECT_EQ(cache.get("text")->view(), "abc");
  EXPECT_STATUS(cache.incr("missing", -1), StatusCode::kNotFound);
}

TEST_F(MemcachedPrivate, IncrReadsNumbersThatMemcachedsOwnDecrPadded) {
  // A native decr from 10 to 9 rewrites the item in place as "9 " (memcached pads it).
  Cache cache(backend_);
  cache.set("n", 10);
  memcached_st* raw = memcached_create(nullptr);
  memcached_behavior_set(raw, MEMCACHED_BEHAVIOR_KETAMA, 1);
  memcached_server_add(raw, "127.0.0.1", static_cast<in_port_t>(first_.port()));
  memcached_server_add(raw, "127.0.0.1", static_cast<in_port_t>(second_.port()));
  std::uint64_t value = 0;
  ASSERT_EQ(memcached_decrement(raw, ":1:n", 4, 1, &value), MEMCACHED_SUCCESS);
  memcached_free(raw);
  EXPECT_EQ(cache.get("n")->view(), "9 ");
  EXPECT_EQ(*cache.incr("n", -1), 8);
}

TEST_F(MemcachedPrivate, IncrKeepsTheRemainingLifetimeOnBothPaths) {
  Cache cache(backend_);
  cache.set("n", 10, 100);
  EXPECT_EQ(*cache.incr("n", 1), 11);    // native
  EXPECT_EQ(*cache.incr("n", -20), -9);  // CAS on the meta protocol
  EXPECT_EQ(*cache.incr("n", 4), -5);    // CAS again: native incr refuses negatives
  Ttl t = cache.ttl("n");
  ASSERT_TRUE(t.expires());
  EXPECT_GE(t.remaining(), 98s);
  EXPECT_LE(t.remaining(), 100s);
  cache.set("forever", 1, kNever);
  EXPECT_EQ(*cache.incr("forever", -2), -1);
  EXPECT_EQ(cache.ttl("forever"), Ttl::never());
}

TEST_F(MemcachedPrivate, ConcurrentIncrAndDecrReachTheExactTotal) {
  Cache cache(backend_);
  cache.set("n", 1000, kNever);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 150; ++i) ASSERT_OK(cache.incr("n", t % 2 == 0 ? 3 : -1));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.get<int>("n"), 1000 + 2 * 150 * 3 - 2 * 150);
}

// memcached's arithmetic rewrites a counter in place: one that loses a digit keeps its length,
// padded with spaces ("1000" - 2 is "998 "). A typed read must still see the number.
TEST_F(MemcachedPrivate, ACounterThatLostADigitStillReadsAsANumber) {
  Cache cache(backend_);
  cache.set("n", 1000, kNever);
  EXPECT_EQ(*cache.incr("n", -2), 998);
  EXPECT_EQ(cache.get<long>("n"), 998);
  EXPECT_EQ(*cache.incr("n", -990), 8);
  EXPECT_EQ(cache.get<int>("n"), 8);
  EXPECT_EQ(*cache.incr("n", -10), -2);  // below zero: the compare-and-swap path reads "8   "
  EXPECT_EQ(cache.get<long>("n"), -2);
}

TEST_F(MemcachedPrivate, ADecrementGetsThroughWhileNativeIncrementsKeepLanding) {
  // Other clients incrementing the counter without pause change its CAS between our read and
  // our write most of the time: the decrement must keep trying, not give up after a few losses.
  Cache cache(backend_);
  cache.set("n", 1000, kNever);
  std::atomic<bool> stop{false};
  std::atomic<long> increments{0};
  std::vector<std::thread> hammers;
  for (int t = 0; t < 3; ++t) {
    hammers.emplace_back([&] {
      memcached_st* raw = memcached_create(nullptr);
      memcached_behavior_set(raw, MEMCACHED_BEHAVIOR_KETAMA, 1);
      memcached_server_add(raw, "127.0.0.1", static_cast<in_port_t>(first_.port()));
      memcached_server_add(raw, "127.0.0.1", static_cast<in_port_t>(second_.port()));
      std::uint64_t value = 0;
      while (!stop.load()) {
        if (memcached_increment(raw, ":1:n", 4, 1, &value) == MEMCACHED_SUCCESS) ++increments;
      }
      memcached_free(raw);
    });
  }
  int failed = 0;
  std::string first_error;
  for (int i = 0; i < 300; ++i) {
    auto r = cache.incr("n", -2);
    if (!r.ok() && failed++ == 0) first_error = r.status().to_string();
  }
  stop = true;
  for (auto& t : hammers) t.join();
  EXPECT_EQ(failed, 0) << first_error;
  EXPECT_EQ(cache.get<long>("n"), 1000 + increments.load() - 2 * (300 - failed));
}

TEST_F(MemcachedPrivate, GetManyPlacesEveryValueWhereItWasAskedFor) {
  for (const char* k : {"a", "b", "c"}) ASSERT_OK(backend_->set(k, k, {}));
  std::vector<std::string_view> keys{"a", "b", "a", "missing", "c"};
  auto got = backend_->get_many(keys);
  ASSERT_OK(got);
  ASSERT_EQ(got->size(), 5u);
  EXPECT_EQ((*got)[0], Bytes("a"));
  EXPECT_EQ((*got)[1], Bytes("b"));
  EXPECT_EQ((*got)[2], Bytes("a"));
  EXPECT_FALSE((*got)[3].has_value());
  EXPECT_EQ((*got)[4], Bytes("c"));
}

TEST_F(MemcachedPrivate, ClearFlushesEveryServerAndKeysAreUnsupported) {
  for (int i = 0; i < 50; ++i) ASSERT_OK(backend_->set("k" + std::to_string(i), "v", {}));
  ASSERT_OK(backend_->clear());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(value_of("k" + std::to_string(i)), "<missing>");
  EXPECT_FALSE(backend_->info().supports_keys);
  EXPECT_STATUS(backend_->keys("*"), StatusCode::kUnimplemented);
}

TEST_F(MemcachedPrivate, StatsListEachServerAndTheTotals) {
  ASSERT_OK(backend_->set("a", "1", {}));
  ASSERT_EQ(value_of("a"), "1");
  ASSERT_EQ(value_of("nope"), "<missing>");
  auto s = stats();
  EXPECT_EQ(s.at("servers"), "2");
  for (const auto& server : {location_of(first_), location_of(second_)}) {
    EXPECT_EQ(s.at(server + ".version"), "1.6.18");
    EXPECT_TRUE(s.contains(server + ".evictions"));
  }
  EXPECT_EQ(s.at("get_hits"), "1");
  EXPECT_EQ(s.at("get_misses"), "1");
}

// ---- the shared servers of `make test` ----

std::vector<std::string> shared_servers() {
  const char* value = std::getenv("CACHEKIT_TEST_MEMCACHED");
  if (value == nullptr || *value == '\0') {
    ADD_FAILURE() << "CACHEKIT_TEST_MEMCACHED is not set: run the tests with `make test` "
                     "(scripts/run-tests), which starts the test servers and sets it";
    return {};
  }
  auto parsed = parse_memcached_locations(value);
  EXPECT_OK(parsed);
  return parsed.ok() ? *parsed : std::vector<std::string>{};
}

// Another libmemcached client configured only with the documented setting (KETAMA = 1) and the
// same server names finds every key where cachekit put it.
TEST(MemcachedSharedServers, KeysSpreadOverBothAndAnotherClientFindsThem) {
  auto servers = shared_servers();
  ASSERT_EQ(servers.size(), 2u);
  auto backend = make_memcached_backend({.servers = servers, .io_timeout = 2s});
  ASSERT_OK(backend);
  memcached_st* other = memcached_create(nullptr);
  memcached_behavior_set(other, MEMCACHED_BEHAVIOR_KETAMA, 1);
  for (const auto& s : servers) {
    auto colon = s.rfind(':');
    memcached_server_add(other, s.substr(0, colon).c_str(),
                         static_cast<in_port_t>(std::stoi(s.substr(colon + 1))));
  }
  std::string prefix = "shared-" + std::to_string(::getpid()) + "-";
  std::map<in_port_t, int> per_server;
  for (int i = 0; i < 200; ++i) {
    std::string key = prefix + std::to_string(i);
    ASSERT_OK((*backend)->set(key, "v" + std::to_string(i), Expiry::never()));
    std::size_t length = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc{};
    char* value = memcached_get(other, key.data(), key.size(), &length, &flags, &rc);
    EXPECT_EQ(rc, MEMCACHED_SUCCESS) << key;
    if (value != nullptr) {
      EXPECT_EQ(std::string(value, length), "v" + std::to_string(i));
    }
    std::free(value);
    ++per_server[memcached_server_port(
        memcached_server_by_key(other, key.data(), key.size(), &rc))];
    EXPECT_TRUE(*(*backend)->erase(key));
  }
  memcached_free(other);
  ASSERT_EQ(per_server.size(), 2u);
  for (const auto& [port, count] : per_server) EXPECT_GT(count, 50) << port;
}

}  // namespace
}  // namespace cachekit
