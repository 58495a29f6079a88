// One behavioural suite, run over every backend: Django's cache contract (BaseCacheTests) as
// seen through cachekit's Cache façade. Time is a ManualClock: the in-process and SQL backends
// expire by it and never sleep. Redis and memcached keep their own time, so for them
// pass_time() also sleeps the time given plus the server's expiry resolution (see
// redis_cases.cc and memcached_cases.cc); no test sleeps to line threads up.

#include <cachekit/cache.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "conformance/backend_cases.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::BackendCase;
using testing::BackendLimits;

struct Product {
  int id = 0;
  std::string name;
  std::vector<double> prices;
  friend bool operator==(const Product&, const Product&) = default;
};
void to_json(nlohmann::json& j, const Product& p) {
  j = {{"id", p.id}, {"name", p.name}, {"prices", p.prices}};
}
void from_json(const nlohmann::json& j, Product& p) {
  j.at("id").get_to(p.id);
  j.at("name").get_to(p.name);
  j.at("prices").get_to(p.prices);
}

class BackendConformance : public ::testing::TestWithParam<BackendCase> {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "cachekit-conf-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    scratch_ = tmpl;
    backend_ = GetParam().make(&clock_, scratch_, BackendLimits{});
    cache_ = make_cache();
  }
  void TearDown() override {
    cache_.reset();
    backend_.reset();
    std::error_code ec;
    std::filesystem::remove_all(scratch_, ec);
  }
  std::unique_ptr<Cache> make_cache(CacheOptions o = {}) {
    o.clock = &clock_;
    return std::make_unique<Cache>(backend_, std::move(o));
  }
  bool stores() const { return GetParam().stores; }
  // Moves time forward by `d` for the store: the injected clock moves, and a server that keeps
  // its own time is given that much real time (plus its expiry resolution).
  void pass_time(std::chrono::milliseconds d) {
    clock_.advance(d);
    if (!GetParam().clock_controls_expiry) std::this_thread::sleep_for(d + GetParam().expiry_slack);
  }
  // The value a storing backend must return; a non-storing one must miss.
  void expect_value(std::string_view key, std::string_view expected, Version v = {}) {
    auto got = cache_->get(key, v);
    if (stores()) {
      ASSERT_TRUE(got.has_value()) << "missing key " << key;
      EXPECT_EQ(got->view(), expected);
    } else {
      EXPECT_FALSE(got.has_value());
    }
  }
  void expect_missing(std::string_view key, Version v = {}) {
    EXPECT_FALSE(cache_->get(key, v).has_value()) << "key " << key << " should be missing";
  }

  ManualClock clock_;
  std::filesystem::path scratch_;
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<Cache> cache_;
};

TEST_P(BackendConformance, MissingKeyIsAMiss) { expect_missing("nope"); }

TEST_P(BackendConformance, SetThenGetReturnsTheValue) {
  EXPECT_TRUE(cache_->set("key", "value"));
  expect_value("key", "value");
}

TEST_P(BackendConformance, StoredEmptyValueIsAHitNotAMiss) {
  cache_->set("empty", "");
  EXPECT_EQ(cache_->get("empty").has_value(), stores());
  EXPECT_EQ(cache_->contains("empty"), stores());
}

TEST_P(BackendConformance, SetOverwrites) {
  cache_->set("k", "one");
  cache_->set("k", "two");
  expect_value("k", "two");
}

TEST_P(BackendConformance, AddDoesNotOverwriteLiveKey) {
  EXPECT_TRUE(cache_->add("k", "first"));
  EXPECT_EQ(cache_->add("k", "second"), !stores());
  expect_value("k", "first");
}

TEST_P(BackendConformance, AddReplacesExpiredKey) {
  cache_->set("k", "old", 1);
  pass_time(1100ms);
  EXPECT_TRUE(cache_->add("k", "new", 10));
  expect_value("k", "new");
}

TEST_P(BackendConformance, EraseReportsWhetherTheKeyExisted) {
  cache_->set("k", "v");
  EXPECT_EQ(cache_->erase("k"), stores());
  EXPECT_FALSE(cache_->erase("k"));
  expect_missing("k");
}

TEST_P(BackendConformance, ContainsSeesLiveKeysOnly) {
  cache_->set("live", "v", 10);
  cache_->set("dying", "v", 1);
  pass_time(1100ms);
  EXPECT_EQ(cache_->contains("live"), stores());
  EXPECT_FALSE(cache_->contains("dying"));
  EXPECT_FALSE(cache_->contains("never-set"));
}

TEST_P(BackendConformance, DefaultTimeoutIs300Seconds) {
  cache_->set("k", "v");
  if (stores()) {
    Ttl t = cache_->ttl("k");
    ASSERT_TRUE(t.expires());
    EXPECT_GT(t.remaining(), 295s);
    EXPECT_LE(t.remaining(), 300s);
  }
  clock_.advance(299s);
  expect_value("k", "v");
  clock_.advance(2s);
  if (GetParam().clock_controls_expiry) {
    expect_missing("k");
  }
}

TEST_P(BackendConformance, ConfiguredDefaultTimeoutApplies) {
  auto c = make_cache({.default_timeout = 2s});
  c->set("k", "v");
  clock_.advance(1s);
  EXPECT_EQ(c->get("k").has_value(), stores());
  pass_time(1100ms);
  EXPECT_FALSE(c->get("k").has_value());
}

TEST_P(BackendConformance, NeverTimeoutDoesNotExpire) {
  cache_->set("k", "v", kNever);
  clock_.advance(24h * 365 * 10);
  expect_value("k", "v");
  EXPECT_EQ(cache_->ttl("k"), stores() ? Ttl::never() : Ttl::missing());
}

TEST_P(BackendConformance, ZeroTimeoutStoresNothingAndRemovesOldValue) {
  cache_->set("k", "old");
  EXPECT_TRUE(cache_->set("k", "new", 0));
  expect_missing("k");
}

TEST_P(BackendConformance, NegativeTimeoutStoresNothing) {
  cache_->set("k", "v", -5);
  expect_missing("k");
}

TEST_P(BackendConformance, AddWithZeroTimeoutReportsSuccessButStoresNothing) {
  EXPECT_TRUE(cache_->add("k", "v", 0));
  expect_missing("k");
}

TEST_P(BackendConformance, AddWithZeroTimeoutOnLiveKeyReportsFailure) {
  cache_->set("k", "v");
  EXPECT_EQ(cache_->add("k", "other", 0), !stores());
  expect_value("k", "v");
}

TEST_P(BackendConformance, FractionalTimeoutsAreHonoured) {
  cache_->set("k", "v", 1.5);
  clock_.advance(1400ms);
  expect_value("k", "v");
  pass_time(200ms);
  expect_missing("k");
}

TEST_P(BackendConformance, TouchExtendsALiveKey) {
  cache_->set("k", "v", 2);
  clock_.advance(1s);
  EXPECT_EQ(cache_->touch("k", 10), stores());
  pass_time(1500ms);
  expect_value("k", "v");
}

TEST_P(BackendConformance, TouchOnMissingKeyReturnsFalse) { EXPECT_FALSE(cache_->touch("nope")); }

TEST_P(BackendConformance, TouchWithNeverMakesKeyPersistent) {
  cache_->set("k", "v", 10);
  EXPECT_EQ(cache_->touch("k", kNever), stores());
  clock_.advance(24h);
  expect_value("k", "v");
  EXPECT_EQ(cache_->ttl("k").is_never(), stores());
}

TEST_P(BackendConformance, TouchWithZeroExpiresTheKeyAndReportsItExisted) {
  cache_->set("k", "v");
  EXPECT_EQ(cache_->touch("k", 0), stores());
  expect_missing("k");
}

TEST_P(BackendConformance, TtlReportsMissingNeverOrRemaining) {
  EXPECT_TRUE(cache_->ttl("nope").is_missing());
  cache_->set("k", "v", 100);
  clock_.advance(40s);
  Ttl t = cache_->ttl("k");
  if (!stores()) {
    EXPECT_TRUE(t.is_missing());
    return;
  }
  ASSERT_TRUE(t.expires());
  EXPECT_GT(t.remaining(), 55s);
  EXPECT_LE(t.remaining(), 100s);
  if (GetParam().clock_controls_expiry) {
    EXPECT_EQ(t.remaining(), 60s);
  }
}

TEST_P(BackendConformance, ClearRemovesEverything) {
  for (int i = 0; i < 20; ++i) cache_->set("k" + std::to_string(i), "v");
  EXPECT_TRUE(cache_->clear());
  for (int i = 0; i < 20; ++i) expect_missing("k" + std::to_string(i));
}

TEST_P(BackendConformance, GetManyReturnsPresentKeysUnderCallerKeys) {
  cache_->set("a", "1");
  cache_->set("b", "2");
  cache_->set("expired", "x", 1);
  pass_time(1100ms);
  auto got = cache_->get_many({"a", "b", "c", "expired"});
  if (!stores()) {
    EXPECT_TRUE(got.empty());
    return;
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at("a"), "1");
  EXPECT_EQ(got.at("b"), "2");
}

TEST_P(BackendConformance, SetManyStoresAllAndReportsNoFailures) {
  std::map<std::string, std::string> items{{"a", "1"}, {"b", "2"}, {"c", ""}};
  EXPECT_TRUE(cache_->set_many(items).empty());
  for (const auto& [k, v] : items) expect_value(k, v);
  EXPECT_TRUE(cache_->set_many(std::map<std::string, std::string>{}).empty());
}

TEST_P(BackendConformance, SetManyWithZeroTimeoutStoresNothing) {
  cache_->set("a", "old");
  EXPECT_TRUE(
      cache_->set_many(std::map<std::string, std::string>{{"a", "1"}, {"b", "2"}}, 0).empty());
  expect_missing("a");
  expect_missing("b");
}

TEST_P(BackendConformance, SetManyEncodesTypedValues) {
  std::map<std::string, int> items{{"x", 1}, {"y", -2}};
  EXPECT_TRUE(cache_->set_many(items).empty());
  expect_value("y", "-2");
}

TEST_P(BackendConformance, EraseManyRemovesAndCounts) {
  cache_->set("a", "1");
  cache_->set("b", "2");
  cache_->set("c", "3");
  EXPECT_EQ(cache_->erase_many({"a", "b", "zz"}), stores() ? 2u : 0u);
  expect_missing("a");
  expect_missing("b");
  expect_value("c", "3");
  EXPECT_EQ(cache_->erase_many(std::vector<std::string>{}), 0u);
}

TEST_P(BackendConformance, IncrOnMissingKeyIsNotFound) {
  auto r = cache_->incr("nope");
  EXPECT_STATUS(r, StatusCode::kNotFound);
  EXPECT_EQ(r.status().message(), "Key 'nope' not found");
  EXPECT_STATUS(cache_->decr("nope"), StatusCode::kNotFound);
}

TEST_P(BackendConformance, IncrAndDecrKeepTheStoredFormDecimal) {
  cache_->set("n", 10);
  if (!stores()) return;  // dummy: covered by IncrOnMissingKeyIsNotFound
  EXPECT_EQ(*cache_->incr("n"), 11);
  EXPECT_EQ(*cache_->incr("n", 10), 21);
  EXPECT_EQ(*cache_->decr("n", 30), -9);
  EXPECT_EQ(*cache_->incr("n", -1), -10);
  expect_value("n", "-10");
  EXPECT_EQ(cache_->get<int>("n"), -10);
}

TEST_P(BackendConformance, IncrCarriesEverySixtyFourBitsOfTheDelta) {
  constexpr std::int64_t kBig = (std::int64_t{1} << 33) + 5;
  cache_->set("n", 1);
  if (!stores()) return;
  EXPECT_EQ(*cache_->incr("n", kBig), 1 + kBig);
  EXPECT_EQ(*cache_->decr("n", kBig), 1);
  EXPECT_EQ(*cache_->incr("n", -kBig), 1 - kBig);
  EXPECT_EQ(*cache_->incr("n", std::numeric_limits<std::int64_t>::max()),
            std::numeric_limits<std::int64_t>::max() + (1 - kBig));
  expect_value("n", std::to_string(std::numeric_limits<std::int64_t>::max() + (1 - kBig)));
}

TEST_P(BackendConformance, IncrOnNonIntegerIsFailedPrecondition) {
  cache_->set("text", "abc");
  if (!stores()) return;
  EXPECT_STATUS(cache_->incr("text"), StatusCode::kFailedPrecondition);
  expect_value("text", "abc");
}

TEST_P(BackendConformance, IncrOverflowIsOutOfRangeAndKeepsValue) {
  cache_->set("big", std::numeric_limits<std::int64_t>::max());
  if (!stores()) return;
  EXPECT_STATUS(cache_->incr("big"), StatusCode::kOutOfRange);
  EXPECT_EQ(cache_->get<std::int64_t>("big"), std::numeric_limits<std::int64_t>::max());
}

TEST_P(BackendConformance, IncrKeepsTheExpiry) {
  cache_->set("n", 1, 2);
  clock_.advance(1s);
  if (!stores()) return;
  EXPECT_EQ(*cache_->incr("n"), 2);
  clock_.advance(500ms);
  expect_value("n", "2");
  pass_time(600ms);
  expect_missing("n");
}

TEST_P(BackendConformance, VersionsAreSeparateKeys) {
  cache_->set("k", "v1", {}, 1);
  cache_->set("k", "v2", {}, 2);
  expect_value("k", "v1", 1);
  expect_value("k", "v2", 2);
  expect_value("k", "v1");  // the cache's default version is 1
  auto v2 = make_cache({.version = 2});
  EXPECT_EQ(v2->get("k").has_value(), stores());
}

TEST_P(BackendConformance, IncrVersionMovesTheValueAndKeepsItsExpiry) {
  cache_->set("k", "v", 2);
  clock_.advance(1s);
  auto r = cache_->incr_version("k");
  if (!stores()) {
    EXPECT_STATUS(r, StatusCode::kNotFound);
    return;
  }
  ASSERT_OK(r);
  EXPECT_EQ(*r, 2);
  expect_missing("k", 1);
  expect_value("k", "v", 2);
  pass_time(1100ms);
  expect_missing("k", 2);
  EXPECT_STATUS(cache_->decr_version("k", 1, 3), StatusCode::kNotFound);
}

TEST_P(BackendConformance, DecrVersionMovesBack) {
  cache_->set("k", "v", {}, 2);
  if (!stores()) return;
  EXPECT_EQ(*cache_->decr_version("k", 1, 2), 1);
  expect_value("k", "v", 1);
  expect_missing("k", 2);
  EXPECT_STATUS(cache_->incr_version("absent"), StatusCode::kNotFound);
}

TEST_P(BackendConformance, PrefixesIsolateCachesOnOneStore) {
  auto a = make_cache({.key_prefix = "a"});
  auto b = make_cache({.key_prefix = "b"});
  a->set("k", "from a");
  EXPECT_FALSE(b->get("k").has_value());
  EXPECT_EQ(a->get("k").has_value(), stores());
}

TEST_P(BackendConformance, CustomKeyFunctionIsUsed) {
  auto c = make_cache({.key_function = [](std::string_view key, std::string_view, std::int64_t) {
    return "custom-" + std::string(key);
  }});
  c->set("k", "v");
  EXPECT_EQ(c->make_key("k"), "custom-k");
  EXPECT_EQ(backend_->get("custom-k")->has_value(), stores());
  EXPECT_FALSE(cache_->get("k").has_value());
}

TEST_P(BackendConformance, GetOrSetComputesOnlyOnAMiss) {
  int calls = 0;
  auto compute = [&] {
    ++calls;
    return std::string("computed");
  };
  EXPECT_EQ(cache_->get_or_set("k", compute).view(), "computed");
  EXPECT_EQ(cache_->get_or_set("k", compute).view(), "computed");
  EXPECT_EQ(calls, stores() ? 1 : 2);
}

TEST_P(BackendConformance, GetOrSetReturnsAConcurrentWinnersValue) {
  auto r = cache_->get_or_set("k", [&] {
    cache_->set("k", "winner");  // another writer gets there first
    return std::string("loser");
  });
  EXPECT_EQ(r.view(), stores() ? "winner" : "loser");
}

TEST_P(BackendConformance, GetOrSetWorksWithTypedValues) {
  Product p{1, "lamp", {9.5, 12.0}};
  EXPECT_EQ(cache_->get_or_set("p", [&] { return p; }), p);
  EXPECT_EQ(cache_->get<Product>("p").has_value(), stores());
}

TEST_P(BackendConformance, BinaryValuesRoundTrip) {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  all += std::string(3, '\0');
  cache_->set("bin", all);
  expect_value("bin", all);
}

TEST_P(BackendConformance, UnicodeKeysAndValuesRoundTrip) {
  cache_->set("ключ-🔑", "значение ✓");
  expect_value("ключ-🔑", "значение ✓");
}

TEST_P(BackendConformance, LargeValuesRoundTrip) {
  std::string big(1 << 20, 'x');
  big[12345] = 'y';
  cache_->set("big", big);
  expect_value("big", big);
}

TEST_P(BackendConformance, TypedValuesRoundTrip) {
  cache_->set("i", 42);
  cache_->set("s", std::string("text"));
  cache_->set("p", Product{7, "chair", {1.25}});
  cache_->set("d", 2.5);
  if (!stores()) return;
  EXPECT_EQ(cache_->get<int>("i"), 42);
  EXPECT_EQ(cache_->get<std::string>("s"), "text");
  EXPECT_EQ(cache_->get<Product>("p"), (Product{7, "chair", {1.25}}));
  EXPECT_EQ(cache_->get<double>("d"), 2.5);
}

TEST_P(BackendConformance, MessagePackIsACompactOption) {
  auto json = make_cache({.key_prefix = "j"});
  auto msgpack = make_cache({.key_prefix = "m", .serializer = Serializer::kMsgpack});
  Product p{3, "desk", {100.0, 90.0, 80.0}};
  json->set("p", p);
  msgpack->set("p", p);
  if (!stores()) return;
  EXPECT_EQ(msgpack->get<Product>("p"), p);
  EXPECT_LT(msgpack->get("p")->size(), json->get("p")->size());
}

TEST_P(BackendConformance, UndecodableValueIsAMissAndCounted) {
  cache_->set("k", "not json {");
  auto errors_before = cache_->stats().errors;
  EXPECT_FALSE(cache_->get<Product>("k").has_value());
  EXPECT_EQ(cache_->stats().errors - errors_before, stores() ? 1u : 0u);
}

TEST_P(BackendConformance, MemcachedHostileKeysAreWarnedAboutAndStillWork) {
  std::string long_key(260, 'k');
  if (backend_->info().key_policy == KeyPolicy::kRefuse) {  // memcached refuses them (Django)
    EXPECT_STATUS(cache_->strict().set(long_key, "v"), StatusCode::kInvalidArgument);
    EXPECT_STATUS(cache_->strict().set("has space", "v"), StatusCode::kInvalidArgument);
    return;
  }
  cache_->set(long_key, "v");
  cache_->set("has space", "v");
  EXPECT_EQ(cache_->stats().key_warnings, 2u);
  expect_value(long_key, "v");
  expect_value("has space", "v");
}

TEST_P(BackendConformance, StatsCountHitsMissesAndWrites) {
  cache_->set("k", "v");
  (void)cache_->get("k");
  (void)cache_->get("nope");
  CacheStats s = cache_->stats();
  EXPECT_EQ(s.writes, 1u);
  EXPECT_EQ(s.hits, stores() ? 1u : 0u);
  EXPECT_EQ(s.misses, stores() ? 1u : 2u);
}

TEST_P(BackendConformance, StaysWithinMaxEntries) {
  if (!GetParam().bounded) return;
  backend_ = GetParam().make(&clock_, scratch_ / "bounded", BackendLimits{.max_entries = 10});
  cache_ = make_cache();
  for (int i = 0; i < 40; ++i) cache_->set("k" + std::to_string(i), "v");
  int present = 0;
  for (int i = 0; i < 40; ++i) present += cache_->contains("k" + std::to_string(i)) ? 1 : 0;
  EXPECT_LE(present, 10);
  EXPECT_GT(present, 0);
  EXPECT_TRUE(cache_->contains("k39")) << "the newest entry must survive culling";
}

TEST_P(BackendConformance, StrictCallsReportSuccess) {
  StrictCache strict = cache_->strict();
  EXPECT_OK(strict.set("k", "v"));
  auto got = strict.get("k");
  ASSERT_OK(got);
  EXPECT_EQ(got->has_value(), stores());
  EXPECT_OK(strict.clear());
}

TEST_P(BackendConformance, ConcurrentIncrReachesTheExactTotal) {
  cache_->set("n", 0, kNever);
  if (!stores()) return;
  constexpr int kThreads = 4, kEach = 250;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) ASSERT_OK(cache_->incr("n"));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache_->get<int>("n"), kThreads * kEach);
}

TEST_P(BackendConformance, ConcurrentReadersNeverSeeATornValue) {
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::string a(4096, 'a'), b(4096, 'b');
  cache_->set("k", a, kNever);
  std::thread writer([&] {
    for (int i = 0; i < 300; ++i) cache_->set("k", i % 2 ? a : b, kNever);
    stop = true;
  });
  std::thread reader([&] {
    while (!stop) {
      auto v = cache_->get("k");
      if (v && v->view() != a && v->view() != b) ++bad;
    }
  });
  writer.join();
  reader.join();
  EXPECT_EQ(bad.load(), 0);
}

std::vector<BackendCase> cases_needing_servers(bool needs_servers) {
  std::vector<BackendCase> out;
  for (auto& c : testing::all_backend_cases()) {
    if (c.needs_servers == needs_servers) out.push_back(std::move(c));
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Local, BackendConformance,
                         ::testing::ValuesIn(cases_needing_servers(false)),
                         [](const auto& info) { return info.param.name; });
INSTANTIATE_TEST_SUITE_P(Servers, BackendConformance,
                         ::testing::ValuesIn(cases_needing_servers(true)),
                         [](const auto& info) { return info.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(BackendConformance);

}  // namespace
}  // namespace cachekit
