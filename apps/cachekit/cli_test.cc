// Drives the real `cachekit` binary (CACHEKIT_CLI_PATH) against a file cache in a temporary
// directory: arguments in, exit code and the exact stdout/stderr bytes out.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

struct Outcome {
  int code = -1;
  std::string out, err;
};

struct Launch {
  std::vector<std::string> args;
  std::string input;                       // written to stdin, which is then closed
  std::map<std::string, std::string> env;  // added to the parent's, minus CACHEKIT_*
  fs::path cwd;
};

std::vector<std::string> child_environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).starts_with("CACHEKIT_")) continue;
    env.emplace_back(*e);
  }
  for (const auto& [name, value] : extra) env.push_back(name + "=" + value);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Feeds stdin and drains stdout/stderr together, so a large value cannot deadlock the pipes.
void pump(int in, int out, int err, std::string_view input, Outcome& run) {
  std::size_t written = 0;
  if (input.empty()) ::close(std::exchange(in, -1));
  std::vector<pollfd> fds;
  while (in >= 0 || out >= 0 || err >= 0) {
    fds = {{in, POLLOUT, 0}, {out, POLLIN, 0}, {err, POLLIN, 0}};
    if (::poll(fds.data(), fds.size(), 10000) <= 0) break;
    if (in >= 0 && fds[0].revents != 0) {
      ssize_t n = ::write(in, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<std::size_t>(n);
      if (n <= 0 || written == input.size()) ::close(std::exchange(in, -1));
    }
    for (auto [fd, text] : {std::pair{&out, &run.out}, std::pair{&err, &run.err}}) {
      int i = fd == &out ? 1 : 2;
      if (*fd < 0 || fds[i].revents == 0) continue;
      char buffer[65536];
      ssize_t n = ::read(*fd, buffer, sizeof buffer);
      if (n > 0) text->append(buffer, static_cast<std::size_t>(n));
      if (n <= 0) ::close(std::exchange(*fd, -1));
    }
  }
  for (int fd : {in, out, err}) {
    if (fd >= 0) ::close(fd);
  }
}

Outcome launch(Launch l) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe2 failed";
    return {};
  }
  l.args.insert(l.args.begin(), CACHEKIT_CLI_PATH);
  auto env = child_environment(l.env);
  auto argv = pointers(l.args);
  auto envp = pointers(env);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!l.cwd.empty() && ::chdir(l.cwd.c_str()) != 0) ::_exit(126);
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  for (int fd : {in[0], out[1], err[1]}) ::close(fd);
  Outcome run;
  pump(in[1], out[0], err[0], l.input, run);
  int status = 0;
  ::waitpid(pid, &status, 0);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // A sanitizer report exits 1, which would pass for "missing key": fail on the report itself.
  EXPECT_THAT(run.err, Not(AnyOf(HasSubstr("Sanitizer"), HasSubstr("runtime error:"))));
  return run;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // a CLI that exits before reading stdin must not kill us
    std::string pattern = (fs::temp_directory_path() / "cachekit-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    config_ = write("app.toml", R"(
[caches.default]
backend = "file"
location = "store"

[caches.prefixed]
backend = "file"
location = "store"
key_prefix = "p"

[caches.mem]
backend = "locmem"

[caches.off]
url = "dummy://"
)");
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }

  // Runs `cachekit --config <app.toml> args...`.
  Outcome cli(std::vector<std::string> args, std::string input = "") {
    args.insert(args.begin(), {"--config", config_.string()});
    return launch({std::move(args), std::move(input), {}, dir_});
  }

  fs::path dir_, config_;
};

TEST_F(Cli, SetThenGetRoundTripsTheValueExactly) {
  Outcome set = cli({"set", "greeting", "hello world"});
  EXPECT_EQ(set.code, 0) << set.err;
  EXPECT_THAT(set.out, IsEmpty());
  Outcome get = cli({"get", "greeting"});
  EXPECT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out, "hello world");  // no newline added
  EXPECT_THAT(get.err, IsEmpty());
}

TEST_F(Cli, SetFromStdinIsBinarySafe) {
  std::string value("\0a\nb\0\xff\r\n", 8);
  std::mt19937 random(42);
  for (int i = 0; i < 300000; ++i) value += static_cast<char>(random());
  ASSERT_EQ(cli({"set", "blob"}, value).code, 0);
  Outcome get = cli({"get", "blob"});
  EXPECT_EQ(get.code, 0) << get.err;
  EXPECT_EQ(get.out.size(), value.size());
  EXPECT_TRUE(get.out == value) << "the bytes differ";

  ASSERT_EQ(cli({"set", "empty"}, "").code, 0);
  Outcome empty = cli({"get", "empty"});
  EXPECT_EQ(empty.code, 0);
  EXPECT_THAT(empty.out, IsEmpty());
}

TEST_F(Cli, GetOfAMissingKeyExits1) {
  Outcome get = cli({"get", "nothing"});
  EXPECT_EQ(get.code, 1);
  EXPECT_THAT(get.out, IsEmpty());
  EXPECT_THAT(get.err, HasSubstr("'nothing' not found"));
}

TEST_F(Cli, AddStoresOnlyAMissingKey) {
  EXPECT_EQ(cli({"add", "k", "first"}).code, 0);
  Outcome again = cli({"add", "k", "second"});
  EXPECT_EQ(again.code, 1);
  EXPECT_THAT(again.err, HasSubstr("already exists"));
  EXPECT_EQ(cli({"get", "k"}).out, "first");
  EXPECT_EQ(cli({"add", "piped"}, "from stdin").code, 0);
  EXPECT_EQ(cli({"get", "piped"}).out, "from stdin");
}

TEST_F(Cli, DeleteExits1WhenTheKeyWasMissing) {
  ASSERT_EQ(cli({"set", "k", "v"}).code, 0);
  EXPECT_EQ(cli({"delete", "k"}).code, 0);
  EXPECT_EQ(cli({"delete", "k"}).code, 1);
  EXPECT_EQ(cli({"get", "k"}).code, 1);
}

TEST_F(Cli, TtlPrintsWholeSecondsOrNever) {
  ASSERT_EQ(cli({"set", "k", "v", "--timeout", "100"}).code, 0);
  Outcome ttl = cli({"ttl", "k"});
  EXPECT_EQ(ttl.code, 0) << ttl.err;
  EXPECT_TRUE(ttl.out == "100\n" || ttl.out == "99\n") << ttl.out;
  ASSERT_EQ(cli({"set", "forever", "v", "--timeout", "never"}).code, 0);
  EXPECT_EQ(cli({"ttl", "forever"}).out, "never\n");
  ASSERT_EQ(cli({"set", "default", "v"}).code, 0);
  Outcome by_default = cli({"ttl", "default"});  // the cache's default timeout, 300 s
  EXPECT_TRUE(by_default.out == "300\n" || by_default.out == "299\n") << by_default.out;
  Outcome missing = cli({"ttl", "nothing"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.out, IsEmpty());
}

TEST_F(Cli, TouchChangesTheTimeoutOfALiveKey) {
  ASSERT_EQ(cli({"set", "k", "v", "--timeout", "never"}).code, 0);
  EXPECT_EQ(cli({"touch", "k", "-t", "50"}).code, 0);
  Outcome ttl = cli({"ttl", "k"});
  EXPECT_TRUE(ttl.out == "50\n" || ttl.out == "49\n") << ttl.out;
  EXPECT_EQ(cli({"touch", "nothing"}).code, 1);
}

TEST_F(Cli, ZeroOrNegativeTimeoutStoresAnExpiredValue) {
  EXPECT_EQ(cli({"set", "k", "v", "--timeout", "0"}).code, 0);
  EXPECT_EQ(cli({"get", "k"}).code, 1);
  EXPECT_EQ(cli({"set", "k", "v", "--timeout=-3"}).code, 0);
  EXPECT_EQ(cli({"get", "k"}).code, 1);
}

TEST_F(Cli, IncrAndDecrPrintTheNewValue) {
  ASSERT_EQ(cli({"set", "n", "10"}).code, 0);
  EXPECT_EQ(cli({"incr", "n"}).out, "11\n");
  EXPECT_EQ(cli({"incr", "n", "5"}).out, "16\n");
  EXPECT_EQ(cli({"decr", "n", "20"}).out, "-4\n");
  EXPECT_EQ(cli({"incr", "n", "-1"}).out, "-5\n");
  EXPECT_EQ(cli({"decr", "n", "-3"}).out, "-2\n");
  EXPECT_EQ(cli({"incr", "n", "--", "-1"}).out, "-3\n");
  EXPECT_EQ(cli({"set", "n", "-5"}).code, 0);  // a negative value is a value, not an option
  EXPECT_EQ(cli({"decr", "n"}).out, "-6\n");
  EXPECT_EQ(cli({"get", "n"}).out, "-6");

  Outcome missing = cli({"incr", "nothing"});
  EXPECT_EQ(missing.code, 1);
  EXPECT_THAT(missing.out, IsEmpty());
  EXPECT_EQ(cli({"decr", "nothing"}).code, 1);
}

// The core logs odd keys through spdlog, whose default sink is stdout; the CLI must keep that
// out of the value bytes.
TEST_F(Cli, LibraryWarningsGoToStderrNotIntoTheValue) {
  ASSERT_EQ(cli({"set", "a key with spaces", "v"}).code, 0);
  Outcome get = cli({"get", "a key with spaces"});
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "v");
  EXPECT_THAT(get.err, HasSubstr("memcached"));
}

TEST_F(Cli, IncrOfTextIsAStoreErrorExiting3) {
  ASSERT_EQ(cli({"set", "word", "abc"}).code, 0);
  Outcome incr = cli({"incr", "word"});
  EXPECT_EQ(incr.code, 3);
  EXPECT_THAT(incr.err, HasSubstr("incr failed"));
  EXPECT_THAT(incr.out, IsEmpty());
}

TEST_F(Cli, KeysListsMatchingCallerKeysOrRawFinalKeys) {
  for (const char* key : {"user:2", "user:1", "item:1"}) ASSERT_EQ(cli({"set", key, "v"}).code, 0);
  ASSERT_EQ(cli({"--cache", "prefixed", "set", "user:9", "v"}).code, 0);

  Outcome users = cli({"keys", "user:*"});
  EXPECT_EQ(users.code, 0) << users.err;
  EXPECT_EQ(users.out, "user:1\nuser:2\n");
  EXPECT_EQ(cli({"keys"}).out, "item:1\nuser:1\nuser:2\n");
  EXPECT_EQ(cli({"--cache", "prefixed", "keys"}).out, "user:9\n");
  EXPECT_EQ(cli({"keys", "--raw", "*user:1"}).out, ":1:user:1\n");
  EXPECT_EQ(cli({"keys", "--raw", "p:*"}).out, "p:1:user:9\n");
  EXPECT_EQ(cli({"keys", "nothing*"}).out, "");
}

TEST_F(Cli, KeyVersionSelectsTheVersion) {
  ASSERT_EQ(cli({"set", "k", "two", "--version", "2"}).code, 0);
  EXPECT_EQ(cli({"get", "k"}).code, 1);
  EXPECT_EQ(cli({"get", "k", "--version", "2"}).out, "two");
  EXPECT_EQ(cli({"keys", "--version", "2"}).out, "k\n");
}

TEST_F(Cli, ClearRemovesEverything) {
  ASSERT_EQ(cli({"set", "a", "1"}).code, 0);
  ASSERT_EQ(cli({"set", "b", "2"}).code, 0);
  EXPECT_EQ(cli({"clear"}).code, 0);
  EXPECT_EQ(cli({"get", "a"}).code, 1);
  EXPECT_EQ(cli({"keys"}).out, "");
}

TEST_F(Cli, StatsPrintsNameValueLines) {
  ASSERT_EQ(cli({"set", "a", "1"}).code, 0);
  Outcome stats = cli({"stats"});
  EXPECT_EQ(stats.code, 0) << stats.err;
  EXPECT_THAT(stats.out, HasSubstr("cache.hits 0\n"));
  EXPECT_THAT(stats.out, HasSubstr("cache.errors 0\n"));
  EXPECT_THAT(stats.out, HasSubstr("\nbackend."));
}

TEST_F(Cli, InProcessCachesAreRefusedWithExit2) {
  Outcome mem = cli({"--cache", "mem", "get", "k"});
  EXPECT_EQ(mem.code, 2);
  EXPECT_THAT(mem.err, AllOf(HasSubstr("cache 'mem'"), HasSubstr("locmem"),
                             HasSubstr("lives inside one process"), HasSubstr("file")));
  Outcome off = cli({"--cache", "off", "set", "k", "v"});
  EXPECT_EQ(off.code, 2);
  EXPECT_THAT(off.err, AllOf(HasSubstr("cache 'off'"), HasSubstr("dummy")));
}

TEST_F(Cli, BadConfigurationNamesFileCacheAndFieldAndExits2) {
  fs::path bad = write("bad.toml",
                       "[caches.default]\nbackend = \"file\"\nlocation = \"s\"\n"
                       "timeout = \"soon\"\n");
  Outcome run = launch({{"--config", bad.string(), "get", "k"}, "", {}, dir_});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, AllOf(HasSubstr(bad.string()), HasSubstr("cache 'default'"),
                             HasSubstr("field 'timeout'")));
  Outcome unknown = cli({"--cache", "sessions", "get", "k"});
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("cache 'sessions': is not configured"));
}

TEST_F(Cli, UsageErrorsExit2) {
  EXPECT_EQ(cli({}).code, 2);
  EXPECT_EQ(cli({"frobnicate"}).code, 2);
  for (const char* command : {"get", "set", "add", "delete", "touch", "ttl", "incr", "decr"}) {
    Outcome run = cli({command});
    EXPECT_EQ(run.code, 2) << command;
    EXPECT_THAT(run.err, HasSubstr("key")) << command;
  }
  EXPECT_EQ(cli({"set", "k", "v", "--timeout", "soon"}).code, 2);
  EXPECT_EQ(cli({"touch", "k", "--timeout", "1e400"}).code, 2);
  EXPECT_EQ(cli({"incr", "k", "many"}).code, 2);
  EXPECT_EQ(cli({"get", "k", "--version", "x"}).code, 2);
  EXPECT_EQ(cli({"clear", "extra"}).code, 2);
}

TEST_F(Cli, EveryCommandHasHelp) {
  for (const char* command :
       {"get", "set", "add", "delete", "touch", "ttl", "incr", "decr", "keys", "clear", "stats"}) {
    Outcome run = cli({command, "--help"});
    EXPECT_EQ(run.code, 0) << command;
    EXPECT_THAT(run.out, HasSubstr(command)) << command;
  }
  Outcome top = launch({{"--help"}, "", {}, dir_});
  EXPECT_EQ(top.code, 0);
  EXPECT_THAT(top.out, AllOf(HasSubstr("Exit codes"), HasSubstr("CACHEKIT_CONFIG")));
  Outcome version = launch({{"--version"}, "", {}, dir_});
  EXPECT_EQ(version.code, 0);
  EXPECT_THAT(version.out, HasSubstr("cachekit "));
}

TEST_F(Cli, WithoutConfigurationExplainsHowToConfigure) {
  fs::create_directory(dir_ / "empty");
  Outcome run = launch({{"get", "k"}, "", {}, dir_ / "empty"});
  EXPECT_EQ(run.code, 2);
  EXPECT_THAT(run.err, AllOf(HasSubstr("--config"), HasSubstr("CACHEKIT_CONFIG"),
                             HasSubstr("cachekit.toml")));
}

TEST_F(Cli, ConfigurationComesFromTheEnvironmentOrTheWorkingDirectory) {
  ASSERT_EQ(cli({"set", "k", "v"}).code, 0);
  Outcome from_env = launch({{"get", "k"}, "", {{"CACHEKIT_CONFIG", config_.string()}}, "/"});
  EXPECT_EQ(from_env.out, "v") << from_env.err;

  fs::copy_file(config_, dir_ / "cachekit.toml");
  Outcome from_cwd = launch({{"get", "k"}, "", {}, dir_});
  EXPECT_EQ(from_cwd.out, "v") << from_cwd.err;

  std::string url = "file://" + (dir_ / "store").string();
  Outcome from_url = launch({{"get", "k"}, "", {{"CACHEKIT_CACHE_URL", url}}, "/"});
  EXPECT_EQ(from_url.out, "v") << from_url.err;

  // --config wins over CACHEKIT_CONFIG.
  Outcome flag_wins = launch({{"--config", config_.string(), "get", "k"},
                              "",
                              {{"CACHEKIT_CONFIG", (dir_ / "missing.toml").string()}},
                              "/"});
  EXPECT_EQ(flag_wins.out, "v") << flag_wins.err;
}

}  // namespace
