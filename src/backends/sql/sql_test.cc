// Behaviour of the SQL backend beyond the conformance suite, on both engines: the table (names
// that need quoting, the missing-table error, createcachetable), incr's integer rules, lazy and
// batched removal of expired rows, the culling order, keys(), stats() and batches.
#include <cachekit/cache.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "support/sql_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using sql_testing::BackendSetup;
using sql_testing::Engine;

class SqlEngines : public ::testing::TestWithParam<Engine> {
 protected:
  std::shared_ptr<Backend> make(BackendSetup setup = {}) {
    setup.clock = &clock_;
    auto backend = sql_testing::make_backend(GetParam(), scratch_.path(), setup);
    table_ = setup.table;
    return backend;
  }
  void SetUp() override {
    backend_ = make();
    cache_ = std::make_unique<Cache>(backend_, CacheOptions{.clock = &clock_});
  }
  std::string stat(std::string_view name) {
    auto stats = backend_->stats();
    EXPECT_OK(stats);
    return stats.ok() ? sql_testing::stat(*stats, name) : "";
  }

  sql_testing::ScratchDir scratch_;
  ManualClock clock_;
  std::string table_;
  std::shared_ptr<Backend> backend_;
  std::unique_ptr<Cache> cache_;
};

TEST_P(SqlEngines, TableNamesWithSpacesQuotesAndSqlWork) {
  BackendSetup setup;
  setup.table = "we\"ird ta'ble; DROP TABLE x; --";
  if (GetParam() == Engine::kPostgres) setup.table += " " + std::to_string(::getpid());
  auto backend = make(setup);
  Cache cache(backend, {.clock = &clock_});
  ASSERT_OK(cache.strict().set("k", "v"));
  EXPECT_EQ(cache.get("k"), "v");
  EXPECT_EQ(cache.strict().keys("*")->size(), 1u);
  EXPECT_EQ(sql_testing::stat(*backend->stats(), "table"), setup.table);
  auto again = create_cache_table(*backend, true);
  ASSERT_OK(again);
  EXPECT_TRUE(again->existed);
  EXPECT_OK(cache.strict().clear());
  EXPECT_FALSE(cache.get("k").has_value());
}

TEST_P(SqlEngines, ClearEmptiesOnlyThisCachesTable) {
  auto other = make();
  Cache other_cache(other, {.clock = &clock_});
  cache_->set("mine", "1");
  other_cache.set("theirs", "2");
  EXPECT_TRUE(cache_->clear());
  EXPECT_FALSE(cache_->get("mine").has_value());
  EXPECT_EQ(other_cache.get("theirs"), "2");
}

TEST_P(SqlEngines, MissingTableIsAnErrorNamingTheTableAndTheCommand) {
  BackendSetup setup;
  setup.table = sql_testing::unique_table("never created");
  setup.create_table = false;
  auto backend = make(setup);
  Cache cache(backend, {.clock = &clock_, .max_error_logs_per_second = 0});
  auto got = cache.strict().get("k");
  ASSERT_STATUS(got, StatusCode::kFailedPrecondition);
  EXPECT_NE(got.status().message().find("'" + setup.table + "'"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("cachekit createcachetable"), std::string::npos);
  EXPECT_STATUS(cache.strict().set("k", "v"), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(cache.get("k").has_value());  // fail-open: a miss, counted
  EXPECT_FALSE(cache.set("k", "v"));
  EXPECT_EQ(cache.stats().errors, 2u);
}

TEST_P(SqlEngines, CreateCacheTableReportsExistingTablesAndCreatesMissingOnes) {
  BackendSetup setup;
  setup.table = sql_testing::unique_table("created later");
  setup.create_table = false;
  auto backend = make(setup);
  auto dry = create_cache_table(*backend, true);
  ASSERT_OK(dry);
  EXPECT_FALSE(dry->existed);
  EXPECT_NE(dry->sql.find("CREATE"), std::string::npos);
  EXPECT_NE(dry->sql.find("\"" + setup.table + "\""), std::string::npos) << dry->sql;
  EXPECT_STATUS(Cache(backend).strict().get("k"), StatusCode::kFailedPrecondition)
      << "a dry run must create nothing";
  auto created = create_cache_table(*backend, false);
  ASSERT_OK(created);
  EXPECT_FALSE(created->existed);
  EXPECT_OK(Cache(backend).strict().set("k", "v"));
  auto second = create_cache_table(*backend, false);
  ASSERT_OK(second);
  EXPECT_TRUE(second->existed);
}

TEST_P(SqlEngines, CreateCacheTableRefusesOtherBackends) {
  struct NotSql : Backend {
    BackendInfo info_{"fake"};
    const BackendInfo& info() const noexcept override { return info_; }
    Result<std::optional<Bytes>> get(std::string_view) override { return std::optional<Bytes>{}; }
    Status set(std::string_view, std::string_view, Expiry) override { return {}; }
    Result<bool> add(std::string_view, std::string_view, Expiry) override { return false; }
    Result<bool> touch(std::string_view, Expiry) override { return false; }
    Result<bool> erase(std::string_view) override { return false; }
    Result<std::int64_t> incr(std::string_view, std::int64_t) override { return 0; }
    Status clear() override { return {}; }
    Result<Ttl> ttl(std::string_view) override { return Ttl::missing(); }
  } fake;
  EXPECT_STATUS(create_cache_table(fake, true), StatusCode::kUnimplemented);
}

TEST_P(SqlEngines, IncrFollowsParseDecimalExactly) {
  auto strict = cache_->strict();
  ASSERT_OK(strict.set("zeros", "007"));
  EXPECT_EQ(*strict.incr("zeros"), 8);
  EXPECT_EQ(cache_->get("zeros"), "8");
  ASSERT_OK(strict.set("minus-zero", "-0"));
  EXPECT_EQ(*strict.incr("minus-zero", -5), -5);
  for (const std::string& bad :
       std::vector<std::string>{"12abc", " 5", "+5", "5 ", "", "1.5", "0x10",
                                "99999999999999999999", std::string("1\0", 2)}) {
    ASSERT_OK(strict.set("bad", bad));
    EXPECT_STATUS(strict.incr("bad"), StatusCode::kFailedPrecondition) << "'" << bad << "'";
    EXPECT_EQ(cache_->get("bad"), bad) << "a refused incr must leave the value alone";
  }
}

TEST_P(SqlEngines, IncrAtTheEdgesOfInt64) {
  auto strict = cache_->strict();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  ASSERT_OK(strict.set("n", std::to_string(kMax - 1)));
  EXPECT_EQ(*strict.incr("n"), kMax);
  EXPECT_STATUS(strict.incr("n"), StatusCode::kOutOfRange);
  EXPECT_EQ(cache_->get("n"), std::to_string(kMax));
  ASSERT_OK(strict.set("m", std::to_string(kMin + 3)));
  EXPECT_EQ(*strict.incr("m", -3), kMin);
  EXPECT_STATUS(strict.incr("m", -1), StatusCode::kOutOfRange);
  EXPECT_EQ(*strict.incr("m", kMax), -1);
}

TEST_P(SqlEngines, IncrOnAnExpiredKeyIsNotFound) {
  cache_->set("n", "1", 10);
  clock_.advance(11s);
  EXPECT_STATUS(cache_->strict().incr("n"), StatusCode::kNotFound);
}

TEST_P(SqlEngines, EraseIfValueRemovesTheRowOnlyWhileItHoldsTheValue) {
  ASSERT_OK(backend_->set("lease", "token-a", Expiry::never()));
  EXPECT_FALSE(*backend_->erase_if_value("lease", "token-b"));
  EXPECT_EQ(backend_->get("lease")->value().view(), "token-a");
  EXPECT_TRUE(*backend_->erase_if_value("lease", "token-a"));
  EXPECT_FALSE(backend_->get("lease")->has_value());
  // An expired claim with the right token is no live key to report as removed.
  ASSERT_OK(backend_->set("lease", "token-c", Expiry::at(clock_.now() + 1s)));
  clock_.advance(2s);
  EXPECT_FALSE(*backend_->erase_if_value("lease", "token-c"));
}

TEST_P(SqlEngines, GetRemovesTheExpiredRowItFinds) {
  cache_->set("short", "v", 1);
  cache_->set("other", "v", 1);
  clock_.advance(2s);
  EXPECT_EQ(stat("expired_entries"), "2");
  EXPECT_FALSE(cache_->get("short").has_value());
  EXPECT_EQ(stat("expired_entries"), "1") << "get should have deleted the row it found expired";
}

TEST_P(SqlEngines, ExpiredRowsAreRemovedInBatchesOfAtMostAThousand) {
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 2500; ++i) items.emplace_back("old" + std::to_string(i), "v");
  ASSERT_TRUE(cache_->set_many(items, 1).empty());
  clock_.advance(2s);
  // A new backend on the same table counts it on its first write, deleting one batch of
  // expired rows (the table has room, so no more than one).
  BackendSetup setup;
  setup.table = table_;
  setup.create_table = false;
  auto fresh = make(setup);
  Cache cache(fresh, {.clock = &clock_});
  ASSERT_TRUE(cache.set("new", "v"));
  EXPECT_EQ(sql_testing::stat(*fresh->stats(), "expired_entries"), "1500");
  EXPECT_EQ(sql_testing::stat(*fresh->stats(), "entries"), "1");
}

TEST_P(SqlEngines, CullingRemovesExpiredRowsFirst) {
  backend_ = make({.max_entries = 10});
  cache_ = std::make_unique<Cache>(backend_, CacheOptions{.clock = &clock_});
  for (int i = 0; i < 5; ++i) cache_->set("old" + std::to_string(i), "v", 1);
  for (int i = 0; i < 5; ++i) cache_->set("keep" + std::to_string(i), "v", kNever);
  clock_.advance(2s);
  cache_->set("new", "v", kNever);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(cache_->contains("keep" + std::to_string(i))) << i;
  EXPECT_EQ(stat("expired_entries"), "0");
  EXPECT_EQ(stat("entries"), "6");
}

// Key order would remove z0, z1, z2 (Django's quirk); the entries closest to expiry are z9,
// z8, z7. Then never-expiring entries go last, oldest write first.
TEST_P(SqlEngines, CullingRemovesTheEntriesClosestToExpiryNeverKeyOrder) {
  backend_ = make({.max_entries = 10, .cull_frequency = 3});
  cache_ = std::make_unique<Cache>(backend_, CacheOptions{.clock = &clock_});
  for (int i = 0; i < 10; ++i) cache_->set("z" + std::to_string(i), "v", 1000 - 100 * i);
  cache_->set("new", "v", 5000);
  for (int i = 0; i < 7; ++i) EXPECT_TRUE(cache_->contains("z" + std::to_string(i))) << i;
  for (int i = 7; i < 10; ++i) EXPECT_FALSE(cache_->contains("z" + std::to_string(i))) << i;
  EXPECT_TRUE(cache_->contains("new"));
}

TEST_P(SqlEngines, NeverExpiringEntriesAreCulledLastOldestWriteFirst) {
  backend_ = make({.max_entries = 4, .cull_frequency = 2});
  cache_ = std::make_unique<Cache>(backend_, CacheOptions{.clock = &clock_});
  cache_->set("b-first", "v", kNever);
  clock_.advance(1ms);
  cache_->set("a-second", "v", kNever);
  clock_.advance(1ms);
  cache_->set("expiring", "v", 100000);
  clock_.advance(1ms);
  cache_->set("c-third", "v", kNever);
  cache_->set("new", "v", kNever);  // full: 2 go — the expiring one, then the oldest write
  EXPECT_FALSE(cache_->contains("expiring"));
  EXPECT_FALSE(cache_->contains("b-first"));
  EXPECT_TRUE(cache_->contains("a-second"));
  EXPECT_TRUE(cache_->contains("c-third"));
  EXPECT_TRUE(cache_->contains("new"));
}

TEST_P(SqlEngines, CullFrequencyZeroEmptiesTheTable) {
  backend_ = make({.max_entries = 5, .cull_frequency = 0});
  cache_ = std::make_unique<Cache>(backend_, CacheOptions{.clock = &clock_});
  for (int i = 0; i < 5; ++i) cache_->set("k" + std::to_string(i), "v");
  cache_->set("new", "v");
  EXPECT_EQ(stat("entries"), "1");
  EXPECT_TRUE(cache_->contains("new"));
}

TEST_P(SqlEngines, KeysMatchGlobsAsGlobMatchDoes) {
  const std::vector<std::string> keys = {"a*b", "a*c",  "axb",    "ab",     "a\\b",   "ä-1",
                                         "ä-2", "b[1]", "user:1", "user:2", "user:10"};
  for (const auto& k : keys) ASSERT_OK(backend_->set(k, "v", Expiry::never()));
  ASSERT_OK(backend_->set("user:old", "v", Expiry::at(clock_.now() + 1s)));
  clock_.advance(2s);
  for (std::string pattern : {"*", "a\\*b", "a*", "a?b", "ä-*", "b\\[1\\]", "user:?", "user:*",
                              "user:[12]", "a\\\\b", "[^a]*", "nothing*"}) {
    auto got = backend_->keys(pattern);
    ASSERT_OK(got);
    std::vector<std::string> expected;
    for (const auto& k : keys) {
      if (glob_match(pattern, k)) expected.push_back(k);
    }
    std::sort(got->begin(), got->end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(*got, expected) << "pattern " << pattern;
  }
}

TEST_P(SqlEngines, StatsNameTheEngineTableAndCounts) {
  cache_->set("a", "1");
  cache_->set("b", "2", 1);
  clock_.advance(2s);
  EXPECT_EQ(stat("engine"), sql_testing::engine_name(GetParam()));
  EXPECT_EQ(stat("table"), table_);
  EXPECT_EQ(stat("entries"), "1");
  EXPECT_EQ(stat("expired_entries"), "1");
  EXPECT_EQ(stat("max_entries"), "100000");
  EXPECT_EQ(backend_->info().name, sql_testing::engine_name(GetParam()));
}

TEST_P(SqlEngines, BatchesHandleDuplicatesAndSpanSeveralStatements) {
  std::vector<std::pair<std::string, std::string>> items;
  for (int i = 0; i < 1200; ++i) items.emplace_back("k" + std::to_string(i), std::to_string(i));
  items.emplace_back("k7", "last wins");
  ASSERT_TRUE(cache_->set_many(items).empty());
  std::vector<std::string> wanted{"k7", "k7", "k1199", "absent"};
  for (int i = 0; i < 1200; i += 2) wanted.push_back("k" + std::to_string(i));
  auto got = cache_->get_many(wanted);
  EXPECT_EQ(got.size(), 602u);  // 600 even keys + k1199 + "k7"
  EXPECT_EQ(got["k7"], "last wins");
  EXPECT_EQ(got["k1198"], "1198");
  EXPECT_FALSE(got.contains("absent"));
  std::vector<std::string_view> views{"k7", "k7", "absent"};
  std::vector<std::optional<Bytes>> raw;
  std::vector<std::string> finals;
  for (auto v : views) finals.push_back(cache_->make_key(v));
  std::vector<std::string_view> final_views(finals.begin(), finals.end());
  auto direct = backend_->get_many(final_views);
  ASSERT_OK(direct);
  ASSERT_EQ(direct->size(), 3u);
  EXPECT_EQ((*direct)[0], "last wins");
  EXPECT_EQ((*direct)[1], "last wins");
  EXPECT_FALSE((*direct)[2].has_value());
  std::vector<std::string> erase;
  for (int i = 0; i < 1200; ++i) erase.push_back("k" + std::to_string(i));
  erase.push_back("absent");
  EXPECT_EQ(cache_->erase_many(erase), 1200u);
  EXPECT_EQ(stat("entries"), "0");
}

TEST_P(SqlEngines, EraseCountsOnlyLiveRows) {
  cache_->set("live", "v");
  cache_->set("dead", "v", 1);
  clock_.advance(2s);
  EXPECT_FALSE(cache_->erase("dead"));
  EXPECT_EQ(cache_->erase_many({"live", "dead", "gone"}), 1u);
  EXPECT_EQ(stat("expired_entries"), "0");
}

TEST_P(SqlEngines, ValuesAreStoredAsRawBytes) {
  std::string value("\0\x01\xff\\x00'\"", 8);
  ASSERT_OK(backend_->set("bin", value, Expiry::never()));
  auto got = backend_->get("bin");
  ASSERT_OK(got);
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->view(), value);
  ASSERT_OK(backend_->set("empty", "", Expiry::never()));
  EXPECT_EQ(backend_->get("empty")->value(), "");
}

TEST_P(SqlEngines, AnExpiryInThePastRemovesTheKey) {
  ASSERT_OK(backend_->set("k", "v", Expiry::never()));
  ASSERT_OK(backend_->set("k", "v2", Expiry::at(clock_.now() - 1s)));
  EXPECT_FALSE(backend_->get("k")->has_value());
  EXPECT_EQ(stat("entries"), "0");
}

INSTANTIATE_TEST_SUITE_P(Engines, SqlEngines, ::testing::Values(Engine::kSqlite, Engine::kPostgres),
                         [](const auto& info) { return sql_testing::engine_name(info.param); });

// A cache file holds whatever the application caches (sessions, rendered pages with user
// data): it, and its WAL and shared-memory files, must be readable by the owner only, even
// under the usual umask 022 (they used to be created 0644).
TEST(SqliteFiles, DatabaseWalAndShmFilesAreCreatedOwnerOnly) {
  sql_testing::ScratchDir scratch;
  const mode_t previous = ::umask(022);
  SqliteOptions options;
  options.path = scratch.path() / "private.db";
  auto backend = make_sqlite_backend(options);
  ASSERT_OK(backend);
  ASSERT_OK(create_cache_table(**backend, false));
  ASSERT_OK((*backend)->set("k", "v", Expiry::never()));
  ::umask(previous);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    const std::string file = options.path.string() + suffix;
    struct stat info {};
    ASSERT_EQ(::stat(file.c_str(), &info), 0) << file << " was not created";
    EXPECT_EQ(info.st_mode & 0777, 0600u) << file;
  }
}

}  // namespace
}  // namespace cachekit
