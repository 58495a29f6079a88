// The "sqlite" and "postgres" backends as configuration files and URLs name them.
#include <cachekit/caches.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/sql_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using ::testing::HasSubstr;

std::string stat(Cache& cache, std::string_view name) {
  auto stats = cache.strict().backend_stats();
  return stats.ok() ? sql_testing::stat(*stats, name) : stats.status().to_string();
}

std::string config_error(std::string_view toml) {
  try {
    (void)Caches::from_toml(toml, "test.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "no error";
}

TEST(SqlConfig, RelativeSqlitePathIsRelativeToTheConfigurationFile) {
  sql_testing::ScratchDir scratch;
  std::filesystem::create_directories(scratch.path() / "etc");
  const auto file = scratch.path() / "etc" / "cachekit.toml";
  std::ofstream(file) << "[caches.default]\nbackend = \"sqlite\"\nlocation = \"data/c.db\"\n"
                      << "options = { table = \"my cache\", max_entries = 7, cull_frequency = 0,"
                      << " call_timeout_ms = 250, pool_size = 2 }\n";
  std::filesystem::create_directories(scratch.path() / "etc" / "data");
  auto caches = Caches::from_file(file);
  Cache& cache = caches.default_cache();
  EXPECT_EQ(cache.backend_info().name, "sqlite");
  ASSERT_OK(create_cache_table(cache.backend(), false));
  EXPECT_EQ(stat(cache, "location"), (scratch.path() / "etc" / "data" / "c.db").string());
  EXPECT_EQ(stat(cache, "table"), "my cache");
  EXPECT_EQ(stat(cache, "max_entries"), "7");
  EXPECT_EQ(stat(cache, "cull_frequency"), "0");
  EXPECT_EQ(stat(cache, "max_connections"), "2");
  EXPECT_TRUE(cache.set("k", "v"));
  EXPECT_EQ(cache.get("k"), "v");
}

TEST(SqlConfig, SqliteUrlNamesAnAbsolutePath) {
  sql_testing::ScratchDir scratch;
  const auto path = scratch.path() / "url cache.db";
  auto caches = Caches::from_url("sqlite://" + path.string());  // the space, percent-decoded
  EXPECT_EQ(caches.default_cache().backend_info().name, "sqlite");
  ASSERT_OK(create_cache_table(caches.default_cache().backend(), false));
  EXPECT_EQ(stat(caches.default_cache(), "location"), path.string());
  EXPECT_THAT(config_error("[caches.default]\nurl = \"sqlite://relative.db\"\n"),
              HasSubstr("a sqlite URL needs an absolute path"));
}

TEST(SqlConfig, PostgresqlUrlsChooseThePostgresBackend) {
  const std::string url = sql_testing::postgres_url();
  for (std::string form : {url, "postgres" + url.substr(url.find("://"))}) {
    auto caches = Caches::from_url(form);
    Cache& cache = caches.default_cache();
    EXPECT_EQ(cache.backend_info().name, "postgres") << form;
  }
  const std::string table = sql_testing::unique_table("config pg");
  auto caches =
      Caches::from_toml("[caches.default]\nurl = \"" + url + "\"\noptions = { table = \"" + table +
                            "\", call_timeout_ms = 2000, connect_timeout_ms = 500,"
                            " pool_size = 3, unlogged = true, down_after_failures = 5,"
                            " retry_after_ms = 250 }\n",
                        "test.toml");
  Cache& cache = caches.default_cache();
  auto created = create_cache_table(cache.backend(), false);
  ASSERT_OK(created);
  EXPECT_THAT(created->sql, HasSubstr("UNLOGGED"));
  EXPECT_TRUE(cache.set("k", "v"));
  EXPECT_EQ(cache.get("k"), "v");
  EXPECT_EQ(stat(cache, "table"), table);
  EXPECT_EQ(stat(cache, "max_connections"), "3");
}

// Two caches with different key prefixes share one table; clearing one used to empty the
// whole table and so the other cache too. The prefixes hold LIKE's metacharacters ('_', '%')
// and a non-ASCII letter, which must all be taken literally.
void expect_clear_keeps_the_other_prefix(const std::string& location_line) {
  const std::string table = sql_testing::unique_table("clear prefix");
  auto cache_table = [&](std::string_view alias, std::string_view prefix) {
    return "[caches." + std::string(alias) + "]\n" + location_line + "key_prefix = \"" +
           std::string(prefix) + "\"\noptions = { table = \"" + table + "\" }\n";
  };
  auto caches = Caches::from_toml(cache_table("default", "a_b%é") + cache_table("other", "axb%é") +
                                      cache_table("third", "a_b%éz"),
                                  "test.toml");
  ASSERT_OK(create_cache_table(caches["default"].backend(), false));
  Cache& mine = caches["default"];
  ASSERT_TRUE(mine.set("k", "mine"));
  ASSERT_TRUE(caches["other"].set("k", "other"));
  ASSERT_TRUE(caches["third"].set("k", "third"));
  ASSERT_OK(mine.strict().clear());
  EXPECT_FALSE(mine.get("k").has_value());
  EXPECT_EQ(caches["other"].get("k"), "other");
  EXPECT_EQ(caches["third"].get("k"), "third");
  ASSERT_OK(caches["other"].strict().clear());
  EXPECT_FALSE(caches["other"].get("k").has_value());
  EXPECT_EQ(caches["third"].get("k"), "third");
}

TEST(SqlConfig, SqliteClearRemovesOnlyItsKeyPrefix) {
  sql_testing::ScratchDir scratch;
  expect_clear_keeps_the_other_prefix("backend = \"sqlite\"\nlocation = \"" +
                                      (scratch.path() / "shared.db").string() + "\"\n");
}

TEST(SqlConfig, PostgresClearRemovesOnlyItsKeyPrefix) {
  expect_clear_keeps_the_other_prefix("url = \"" + sql_testing::postgres_url() + "\"\n");
}

TEST(SqlConfig, TheLocationShownNeverIncludesThePassword) {
  PostgresOptions options;
  options.url = "postgresql://app:s3cret@127.0.0.1:1/shop";
  options.call_timeout = std::chrono::milliseconds(500);
  auto backend = make_postgres_backend(options);
  ASSERT_OK(backend);
  auto got = (*backend)->get("k");  // port 1 refuses: the error names the location
  ASSERT_FALSE(got.ok());
  EXPECT_THAT(got.status().message(), ::testing::Not(HasSubstr("s3cret")));
  EXPECT_THAT(got.status().message(), HasSubstr("postgresql://app@127.0.0.1:1/shop"));
}

TEST(SqlConfig, BadSettingsAreRefusedAtStartup) {
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\nlocation = \"c.db\"\n"
                           "options = { max_entires = 5 }\n"),
              HasSubstr("field 'options.max_entires': unknown option for the sqlite backend"));
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\nlocation = \"c.db\"\n"
                           "options = { max_entries = \"ten\" }\n"),
              HasSubstr("options.max_entries"));
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\nlocation = \"c.db\"\n"
                           "options = { call_timeout_ms = 0 }\n"),
              HasSubstr("options.call_timeout_ms"));
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\n"),
              HasSubstr("the sqlite backend needs a location"));
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\nlocation = \"a.db;b.db\"\n"),
              HasSubstr("takes one location"));
  EXPECT_THAT(config_error("[caches.default]\nbackend = \"sqlite\"\nlocation = \":memory:\"\n"),
              HasSubstr("field 'location'"));
  EXPECT_THAT(config_error("[caches.default]\nurl = \"postgresql://h/db?nosuchparam=1\"\n"),
              HasSubstr("bad connection URL"));
  EXPECT_THAT(config_error("[caches.default]\nurl = \"postgresql://h/db\"\n"
                           "options = { table = \"" +
                           std::string(64, 't') + "\" }\n"),
              HasSubstr("field 'options.table'"));
  EXPECT_THAT(config_error("[caches.default]\nurl = \"postgresql://h/db\"\n"
                           "options = { unlogged = 1 }\n"),
              HasSubstr("options.unlogged"));
  EXPECT_THAT(config_error("[caches.default]\nurl = \"postgresql://h/db\"\n"
                           "options = { down_after_failures = 0 }\n"),
              HasSubstr("options.down_after_failures"));
}

}  // namespace
}  // namespace cachekit
