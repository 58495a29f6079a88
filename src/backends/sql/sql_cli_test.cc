// `cachekit createcachetable [--dry-run]`, driving the real binary (CACHEKIT_CLI_PATH) on a
// configuration with an in-process default cache, a SQLite cache (a relative path) and a
// PostgreSQL cache whose table name needs quoting.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/sql_test_support.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct Outcome {
  int code = -1;
  std::string out, err;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs the CLI with stdout and stderr in files (small outputs; no pipe juggling needed).
Outcome run(const fs::path& dir, std::vector<std::string> args) {
  args.insert(args.begin(), CACHEKIT_CLI_PATH);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, (dir / "out").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, (dir / "err").c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  pid_t pid = -1;
  Outcome outcome;
  if (::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  outcome.out = slurp(dir / "out");
  outcome.err = slurp(dir / "err");
  return outcome;
}

class CreateCacheTableCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("CACHEKIT_CONFIG");
    ::unsetenv("CACHEKIT_CACHE_URL");
    pg_table_ = cachekit::sql_testing::unique_table("cli \"pg\"");
    config_ = scratch_.path() / "cachekit.toml";
    std::string quoted_table;  // TOML basic string: escape the quotes
    for (char c : pg_table_) quoted_table += c == '"' ? std::string("\\\"") : std::string(1, c);
    std::ofstream(config_) << "[caches.default]\nbackend = \"locmem\"\n\n"
                           << "[caches.db]\nbackend = \"sqlite\"\nlocation = \"cache.db\"\n\n"
                           << "[caches.also_db]\nbackend = \"sqlite\"\nlocation = \"cache.db\"\n"
                           << "options = { table = \"second\" }\n\n"
                           << "[caches.pg]\nurl = \"" << cachekit::sql_testing::postgres_url()
                           << "\"\noptions = { table = \"" << quoted_table << "\" }\n";
  }
  Outcome cli(std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config_.string()});
    return run(scratch_.path(), std::move(args));
  }

  cachekit::sql_testing::ScratchDir scratch_;
  fs::path config_;
  std::string pg_table_;
};

TEST_F(CreateCacheTableCommand, DryRunPrintsTheSqlAndCreatesNothing) {
  auto dry = cli({"createcachetable", "--dry-run"});
  EXPECT_EQ(dry.code, 0) << dry.err;
  EXPECT_THAT(dry.out, HasSubstr("CREATE TABLE IF NOT EXISTS \"cachekit_cache\""));
  EXPECT_THAT(dry.out, HasSubstr("CREATE TABLE IF NOT EXISTS \"second\""));
  std::string quoted;
  for (char c : pg_table_) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  EXPECT_THAT(dry.out, HasSubstr("\"" + quoted + "\" (\n    key TEXT COLLATE \"C\""));
  EXPECT_THAT(dry.out, HasSubstr("BYTEA"));
  EXPECT_FALSE(fs::exists(scratch_.path() / "cache.db")) << "a dry run creates no database";
  auto get = cli({"--cache", "pg", "get", "k"});
  EXPECT_EQ(get.code, 3) << "the table must still be missing";
  EXPECT_THAT(get.err, HasSubstr("cachekit createcachetable"));
}

TEST_F(CreateCacheTableCommand, CreatesMissingTablesOnceAndThenReportsThem) {
  auto first = cli({"createcachetable"});
  EXPECT_EQ(first.code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("Cache table 'cachekit_cache' created."));
  EXPECT_THAT(first.out, HasSubstr("Cache table 'second' created."));
  EXPECT_THAT(first.out, HasSubstr("Cache table '" + pg_table_ + "' created."));
  EXPECT_THAT(first.out, Not(HasSubstr("CREATE")));
  EXPECT_TRUE(fs::exists(scratch_.path() / "cache.db")) << "relative to the config file";

  auto second = cli({"createcachetable"});
  EXPECT_EQ(second.code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("Cache table 'cachekit_cache' already exists."));
  EXPECT_THAT(second.out, HasSubstr("Cache table '" + pg_table_ + "' already exists."));
  auto dry = cli({"createcachetable", "--dry-run"});
  EXPECT_THAT(dry.out, Not(HasSubstr("CREATE")));

  for (std::string alias : {"db", "also_db", "pg"}) {
    EXPECT_EQ(cli({"--cache", alias, "set", "k", alias}).code, 0) << alias;
    auto got = cli({"--cache", alias, "get", "k"});
    EXPECT_EQ(got.code, 0) << got.err;
    EXPECT_EQ(got.out, alias);
  }
}

TEST_F(CreateCacheTableCommand, UsingAMissingTableNamesTheTableAndTheCommand) {
  auto got = cli({"--cache", "db", "set", "k", "v"});
  EXPECT_EQ(got.code, 3);
  EXPECT_THAT(got.err, HasSubstr("Cache table 'cachekit_cache' does not exist"));
  EXPECT_THAT(got.err, HasSubstr("cachekit createcachetable"));
}

TEST_F(CreateCacheTableCommand, AnUnreachableDatabaseFailsTheCommand) {
  std::ofstream(config_) << "[caches.default]\nurl = \"postgresql://u@127.0.0.1:1/db\"\n";
  auto outcome = cli({"createcachetable"});
  EXPECT_EQ(outcome.code, 3);
  EXPECT_THAT(outcome.err, HasSubstr("createcachetable failed: unavailable"));
}

}  // namespace

// Two caches share one SQLite table under different key prefixes: `cachekit clear` on one
// must leave the other's entries (it used to empty the table).
TEST(SqlClearCommand, ClearOfAPrefixedCacheLeavesTheOtherPrefixInTheSharedTable) {
  ::unsetenv("CACHEKIT_CONFIG");
  ::unsetenv("CACHEKIT_CACHE_URL");
  cachekit::sql_testing::ScratchDir scratch;
  const fs::path config = scratch.path() / "cachekit.toml";
  std::ofstream(config) << "[caches.default]\nbackend = \"sqlite\"\nlocation = \"cache.db\"\n"
                        << "key_prefix = \"shop\"\n\n"
                        << "[caches.blog]\nbackend = \"sqlite\"\nlocation = \"cache.db\"\n"
                        << "key_prefix = \"blog\"\n";
  auto cli = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--config", config.string()});
    return run(scratch.path(), std::move(args));
  };
  ASSERT_EQ(cli({"createcachetable"}).code, 0);
  ASSERT_EQ(cli({"set", "hello", "world"}).code, 0);
  ASSERT_EQ(cli({"--cache", "blog", "set", "post", "kept"}).code, 0);
  ASSERT_EQ(cli({"clear"}).code, 0);
  EXPECT_EQ(cli({"get", "hello"}).code, 1);  // a miss
  Outcome kept = cli({"--cache", "blog", "get", "post"});
  EXPECT_EQ(kept.code, 0) << kept.err;
  EXPECT_EQ(kept.out, "kept");
}
