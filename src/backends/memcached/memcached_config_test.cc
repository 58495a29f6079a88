// The memcached backend through configuration (TOML, URL) and through the real `cachekit` CLI,
// against private memcached processes.
#include <cachekit/backends/memcached.h>
#include <cachekit/caches.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "support/memcached_server.h"

extern char** environ;

namespace cachekit {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::location_of;
using ::testing::MatchesRegex;
using testing::ServerProcess;
using testing::start_memcached;

class MemcachedConfig : public ::testing::Test {
 protected:
  std::string servers() const { return location_of(first_) + "," + location_of(second_); }
  ServerProcess first_ = start_memcached();
  ServerProcess second_ = start_memcached();
};

TEST_F(MemcachedConfig, TomlBuildsAMemcachedCache) {
  auto caches = Caches::from_toml("[caches.default]\nbackend = \"memcached\"\nlocation = [\"" +
                                      location_of(first_) + "\", \"" + location_of(second_) +
                                      "\"]\noptions = { io_timeout_ms = 500, pool_size = 4 }\n",
                                  "test.toml");
  Cache& cache = caches.default_cache();
  EXPECT_EQ(cache.backend().info().name, "memcached");
  ASSERT_TRUE(cache.set("k", "v"));
  EXPECT_EQ(cache.get("k")->view(), "v");
}

TEST_F(MemcachedConfig, UrlAndSeparatedStringsNameTheSameServers) {
  auto from_url = Caches::from_url("memcached://" + servers());
  ASSERT_TRUE(from_url.default_cache().set("k", "from url"));
  auto from_string =
      Caches::from_toml("[caches.default]\nbackend = \"memcached\"\nlocation = \"" +
                            location_of(first_) + ";" + location_of(second_) + "\"\n",
                        "test.toml");
  EXPECT_EQ(from_string.default_cache().get("k")->view(), "from url");
}

TEST_F(MemcachedConfig, BadSettingsNameTheField) {
  auto error_of = [](const std::string& toml) -> std::string {
    try {
      (void)Caches::from_toml(toml, "test.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  std::string head = "[caches.default]\nbackend = \"memcached\"\n";
  EXPECT_THAT(error_of(head + "location = \"h:1\"\noptions = { io_timeout_ms = 0 }\n"),
              HasSubstr("field 'options.io_timeout_ms': must be between 1 and 60000, got 0"));
  EXPECT_THAT(error_of(head + "location = \"h:1\"\noptions = { timeout = 5 }\n"),
              HasSubstr("field 'options.timeout': unknown option for the memcached backend"));
  EXPECT_THAT(error_of(head + "location = \"h:1\"\noptions = { pool_size = \"big\" }\n"),
              HasSubstr("field 'options.pool_size': expected an integer"));
  EXPECT_THAT(error_of(head + "location = \"h:99999\"\n"),
              HasSubstr("field 'location': bad memcached server \"h:99999\""));
  EXPECT_THAT(error_of(head), HasSubstr("the memcached backend needs its servers"));
}

// ---- the CLI ----

struct CliRun {
  int code = -1;
  std::string out, err;
};

[[maybe_unused]] std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `cachekit --config <config> args...`, output captured in files (no pipe to deadlock on).
CliRun cli(const fs::path& config, std::vector<std::string> args) {
#ifndef CACHEKIT_CLI_PATH
  (void)config;
  (void)args;
  ADD_FAILURE() << "built without the CLI (CACHEKIT_BUILD_APPS=OFF)";
  return {};
#else
  fs::path out = config.parent_path() / "out", err = config.parent_path() / "err";
  args.insert(args.begin(), {CACHEKIT_CLI_PATH, "--config", config.string()});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid = -1;
  CliRun run;
  if (::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  posix_spawn_file_actions_destroy(&actions);
  run.out = slurp(out);
  run.err = slurp(err);
  return run;
#endif
}

TEST_F(MemcachedConfig, CliCommandsWorkOnAMemcachedCache) {
  std::string pattern = (fs::temp_directory_path() / "cachekit-mc-cli-XXXXXX").string();
  ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
  fs::path dir = pattern, config = dir / "cachekit.toml";
  std::ofstream(config) << "[caches.default]\nurl = \"memcached://" << servers() << "\"\n";

  EXPECT_EQ(cli(config, {"set", "greeting", "hello"}).code, 0);
  CliRun got = cli(config, {"get", "greeting"});
  EXPECT_EQ(got.code, 0) << got.err;
  EXPECT_EQ(got.out, "hello");
  EXPECT_EQ(cli(config, {"set", "n", "5"}).code, 0);
  CliRun incr = cli(config, {"incr", "n", "--", "-8"});
  EXPECT_EQ(incr.code, 0) << incr.err;
  EXPECT_EQ(incr.out, "-3\n");
  CliRun ttl = cli(config, {"ttl", "greeting"});
  EXPECT_EQ(ttl.code, 0) << ttl.err;
  EXPECT_THAT(ttl.out, MatchesRegex("(29[89]|300)\n"));  // the default 300 s
  EXPECT_EQ(cli(config, {"delete", "greeting"}).code, 0);
  EXPECT_EQ(cli(config, {"get", "greeting"}).code, 1);
  CliRun stats = cli(config, {"stats"});
  EXPECT_EQ(stats.code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr("backend." + location_of(first_) + ".curr_items "));
  EXPECT_THAT(stats.out, HasSubstr("backend.servers 2\n"));
  CliRun keys = cli(config, {"keys"});
  EXPECT_EQ(keys.code, 2) << "keys is unsupported: reported like a configuration error";
  EXPECT_THAT(keys.err, HasSubstr("this cache cannot do that"));
  EXPECT_EQ(cli(config, {"clear"}).code, 0);
  EXPECT_EQ(cli(config, {"get", "n"}).code, 1);

  first_.kill();
  second_.kill();
  CliRun down = cli(config, {"get", "n"});
  EXPECT_EQ(down.code, 3) << "a store failure, not a miss: " << down.err;
  EXPECT_THAT(down.err, HasSubstr("unavailable"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace cachekit
