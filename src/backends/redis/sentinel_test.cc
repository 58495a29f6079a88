// The Redis backend through the shared sentinels of scripts/test-servers (a primary, a
// replica, three sentinels; CACHEKIT_TEST_REDIS_SENTINEL): discovery, dead sentinels, replica
// reads, and the command-line tool. Nothing here fails a server over: that is
// sentinel_failover_test.cc, on private servers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <map>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "support/redis_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::RawRedis;

std::string sentinel_url() { return testing::shared_redis_url("CACHEKIT_TEST_REDIS_SENTINEL"); }

// The URL with `address` put first in its list of sentinels.
std::string with_first_sentinel(const std::string& url, const std::string& address) {
  return "sentinel://" + address + "," + url.substr(url.find("://") + 3);
}

// host:port of the first sentinel of the URL.
int first_sentinel_port(const std::string& url) {
  auto start = url.find(':', url.find("://") + 3) + 1;
  return std::stoi(url.substr(start, url.find_first_of(",/", start) - start));
}

// What the sentinels say: the primary's port, and the first replica's.
int primary_port() {
  RawRedis sentinel("127.0.0.1", first_sentinel_port(sentinel_url()));
  return std::stoi(
      sentinel.command({"SENTINEL", "get-master-addr-by-name", "mymaster"}).elements.at(1).str);
}

std::map<std::string, std::string> stats_of(Backend& backend) {
  auto s = backend.stats();
  if (!s.ok()) return {};
  return {s->begin(), s->end()};
}

std::shared_ptr<Backend> make(const std::string& url, RedisOptions options = {}) {
  options.locations = {url};
  if (options.key_namespace.empty()) options.key_namespace = testing::unique_namespace("sentinel");
  auto backend = make_redis_backend(options);
  EXPECT_OK(backend);
  return backend.ok() ? *backend : nullptr;
}

TEST(SentinelShared, FindsThePrimaryAndUsesItsDatabaseTwo) {
  const std::string ns = testing::unique_namespace("sentinel");
  auto backend = make(sentinel_url(), {.key_namespace = ns});
  ASSERT_NE(backend, nullptr);
  Cache cache(backend, {.key_prefix = "shop"});
  ASSERT_TRUE(cache.set("greeting", "hello"));
  EXPECT_EQ(cache.get("greeting"), Bytes("hello"));
  auto s = stats_of(*backend);
  EXPECT_EQ(s["server"], "127.0.0.1:" + std::to_string(primary_port()) + "/2");
  EXPECT_THAT(s["sentinel.master"], HasSubstr("/mymaster/2"));
  EXPECT_EQ(s["role"], "master");
  // Checked on the server the sentinels name, with a plain client.
  RawRedis primary("127.0.0.1", primary_port(), 2);
  EXPECT_EQ(primary.command({"GET", ns + "shop:1:greeting"}).str, "hello");
}

TEST(SentinelShared, ADeadSentinelFirstInTheListIsSkipped) {
  std::string url =
      with_first_sentinel(sentinel_url(), "127.0.0.1:" + std::to_string(testing::free_port()));
  auto backend = make(url);
  ASSERT_NE(backend, nullptr);
  ASSERT_OK(backend->set("k", "v", Expiry::never()));
  auto got = backend->get("k");
  ASSERT_OK(got);
  EXPECT_EQ(*got, Bytes("v"));
}

TEST(SentinelShared, WithNoSentinelAnsweringCallsFailFastAndTheFacadeFailsOpen) {
  std::string url = "sentinel://127.0.0.1:" + std::to_string(testing::free_port()) +
                    ",127.0.0.1:" + std::to_string(testing::free_port()) + "/mymaster/2";
  auto start = std::chrono::steady_clock::now();
  {
    auto backend = make(url, {.connect_timeout = 100ms, .io_timeout = 100ms});
    ASSERT_NE(backend, nullptr);  // made all the same: the sentinels may come back
    Cache cache(backend, {.max_error_logs_per_second = 0});
    EXPECT_FALSE(cache.get("k").has_value());
    EXPECT_FALSE(cache.set("k", "v"));
    auto strict = backend->get("k");
    EXPECT_STATUS(strict, StatusCode::kUnavailable);
    EXPECT_THAT(strict.status().message(), HasSubstr("no primary known yet"));
  }  // the watcher thread is woken and joined, not waited out
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
}

TEST(SentinelShared, ReadsGoToTheReplicasTheSentinelsListWhenAsked) {
  std::string url = sentinel_url() + "?replicas=true";
  auto backend = make(url, {.io_timeout = 2s, .wait_replicas = 1});
  ASSERT_NE(backend, nullptr);
  auto s = stats_of(*backend);
  ASSERT_TRUE(s.contains("replica1.server")) << "the sentinels listed no replica";
  auto replica_port = std::stoi(s["replica1.server"].substr(s["replica1.server"].find(':') + 1));
  RawRedis replica("127.0.0.1", replica_port);
  ASSERT_OK(backend->set("k", "v", Expiry::never()));  // WAIT 1: the replica has it
  long long before = replica.calls("get");
  auto got = backend->get("k");
  ASSERT_OK(got);
  EXPECT_EQ(*got, Bytes("v"));
  EXPECT_EQ(replica.calls("get"), before + 1);
}

#ifdef CACHEKIT_CLI_PATH
// The CLI on a sentinel cache from a configuration file; a key prefix of its own keeps clear()
// to this test's keys on the shared primary.
TEST(SentinelCli, KeysGetDeleteClearTtlAndStatsWork) {
  std::string prefix = "clitest" + std::to_string(::getpid());
  std::string config =
      ::testing::TempDir() + "sentinel-cli-" + std::to_string(::getpid()) + ".toml";
  {
    std::FILE* f = std::fopen(config.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string text =
        "[caches.default]\nurl = \"" + sentinel_url() + "\"\nkey_prefix = \"" + prefix + "\"\n";
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto cli = [&](const std::string& args, std::string* out = nullptr) {
    std::string command = "env -u CACHEKIT_CACHE_URL '" + std::string(CACHEKIT_CLI_PATH) +
                          "' --config '" + config + "' " + args + " 2>/dev/null";
    std::FILE* pipe = ::popen(command.c_str(), "r");
    if (pipe == nullptr) return -1;
    char buffer[4096];
    std::size_t n = 0;
    std::string text;
    while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) text.append(buffer, n);
    if (out != nullptr) *out = text;
    int status = ::pclose(pipe);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string out;
  EXPECT_EQ(cli("set greeting hello"), 0);
  EXPECT_EQ(cli("get greeting", &out), 0);
  EXPECT_EQ(out, "hello");
  EXPECT_EQ(cli("ttl greeting", &out), 0);
  // Whole seconds, rounded down: a slow process start (sanitizers) may already make it 299.
  EXPECT_THAT(out, ::testing::AnyOf(::testing::Eq("300\n"), ::testing::Eq("299\n")));
  EXPECT_EQ(cli("set other x --timeout never"), 0);
  EXPECT_EQ(cli("keys", &out), 0);
  EXPECT_EQ(out, "greeting\nother\n");
  EXPECT_EQ(cli("stats", &out), 0);
  EXPECT_THAT(out, HasSubstr("backend.sentinel.master sentinel://127.0.0.1:"));
  EXPECT_THAT(out, HasSubstr("backend.role master"));
  RawRedis primary("127.0.0.1", primary_port(), 2);
  EXPECT_EQ(primary.command({"GET", prefix + ":1:greeting"}).str, "hello");
  primary.command({"SET", "foreign" + prefix, "keep"});
  EXPECT_EQ(cli("delete greeting"), 0);
  EXPECT_EQ(cli("get greeting"), 1);
  EXPECT_EQ(cli("clear"), 0);
  EXPECT_EQ(primary.command({"EXISTS", prefix + ":1:other"}).integer, 0);
  EXPECT_EQ(primary.command({"GET", "foreign" + prefix}).str, "keep");
  primary.command({"DEL", "foreign" + prefix});
  std::remove(config.c_str());
}
#endif

}  // namespace
}  // namespace cachekit
