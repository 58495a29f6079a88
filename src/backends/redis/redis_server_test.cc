// The Redis backend against real servers: what reaches the server (checked through a raw
// hiredis connection, as another client would see it), SCAN-based pattern operations,
// scoped clear(), locks, replicas, Unix sockets, AUTH, stats and the CLI. Tests that flush
// a database or need exact server counters use a private redis-server; the others use the
// shared test server with a key namespace of their own.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <thread>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "cachekit/caches.h"
#include "support/redis_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Pair;
using testing::RawRedis;
using testing::ServerProcess;

std::shared_ptr<Backend> backend_for(RedisOptions options) {
  auto backend = make_redis_backend(std::move(options));
  EXPECT_OK(backend);
  return backend.ok() ? *backend : nullptr;
}

class RedisShared : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = testing::shared_redis_url();
    namespace_ = testing::unique_namespace("redis_test");
    backend_ = backend_for({.locations = {url_}, .key_namespace = namespace_});
  }
  std::string url_, namespace_;
  std::shared_ptr<Backend> backend_;
};

TEST_F(RedisShared, IntegersAreDecimalTextThatRawIncrUnderstands) {
  Cache cache(backend_, {.key_prefix = "p"});
  ASSERT_TRUE(cache.set("hits", 41));
  RawRedis raw = RawRedis::from_url(url_);
  std::string key = namespace_ + "p:1:hits";
  EXPECT_EQ(raw.command({"GET", key}).str, "41");
  EXPECT_EQ(raw.command({"INCR", key}).integer, 42);  // what redis-cli INCR does
  EXPECT_EQ(cache.get<int>("hits"), 42);
  EXPECT_EQ(*cache.incr("hits", 8), 50);
  raw.command({"SET", namespace_ + "p:1:from-elsewhere", "written by another client"});
  EXPECT_EQ(cache.get("from-elsewhere")->view(), "written by another client");
}

TEST_F(RedisShared, ExpiryReachesTheServerAsPxFromTheClock) {
  ManualClock clock;
  auto backend = backend_for({.locations = {url_}, .key_namespace = namespace_, .clock = &clock});
  ASSERT_OK(backend->set("k", "v", Expiry::at(clock.now() + 5s)));
  ASSERT_OK(backend->set("forever", "v", Expiry::never()));
  RawRedis raw = RawRedis::from_url(url_);
  long long pttl = raw.command({"PTTL", namespace_ + "k"}).integer;
  EXPECT_GT(pttl, 4000);
  EXPECT_LE(pttl, 5000);
  EXPECT_EQ(raw.command({"PTTL", namespace_ + "forever"}).integer, -1);
  EXPECT_EQ(backend->ttl("forever")->is_never(), true);
}

TEST_F(RedisShared, IncrOnAMissingKeyCreatesNothing) {
  EXPECT_STATUS(backend_->incr("absent", 5), StatusCode::kNotFound);
  RawRedis raw = RawRedis::from_url(url_);
  EXPECT_EQ(raw.command({"EXISTS", namespace_ + "absent"}).integer, 0);
}

TEST_F(RedisShared, KeysAndErasePatternCoverTenThousandKeys) {
  std::vector<std::string> names;
  for (int i = 0; i < 10'000; ++i) names.push_back("user:" + std::to_string(i));
  for (int i = 0; i < 500; ++i) names.push_back("order:" + std::to_string(i));
  std::vector<KeyValue> items;
  for (const auto& n : names) items.push_back({n, "v"});
  ASSERT_TRUE(backend_->set_many(items, Expiry::never())->empty());

  auto users = backend_->keys("user:*");
  ASSERT_OK(users);
  EXPECT_EQ(users->size(), 10'000u);
  EXPECT_THAT(*users, Contains("user:9999"));  // the namespace is stripped
  auto erased = redis::erase_pattern(*backend_, "user:*");
  ASSERT_OK(erased);
  EXPECT_EQ(*erased, 10'000u);
  EXPECT_TRUE(backend_->keys("user:*")->empty());
  EXPECT_EQ(backend_->keys("order:*")->size(), 500u);
  RawRedis raw = RawRedis::from_url(url_);
  EXPECT_EQ(raw.command({"EXISTS", namespace_ + "order:499"}).integer, 1);
}

TEST_F(RedisShared, ErasePatternOnACacheMatchesItsPrefixAndVersionLiterally) {
  Cache star(backend_, {.key_prefix = "a*"});  // the '*' in the prefix must not match "ab"
  Cache other(backend_, {.key_prefix = "ab"});
  star.set("x:1", "v");
  star.set("y:1", "v");
  star.set("x:2", "v", {}, 2);
  other.set("x:1", "v");
  auto erased = redis::erase_pattern(star, "x:*");
  ASSERT_OK(erased);
  EXPECT_EQ(*erased, 1u);
  EXPECT_FALSE(star.contains("x:1"));
  EXPECT_TRUE(star.contains("y:1"));
  EXPECT_TRUE(star.contains("x:2", 2));
  EXPECT_TRUE(other.contains("x:1"));
}

TEST_F(RedisShared, LocksAreReleasedOnlyByTheirOwner) {
  auto token = redis::try_lock(*backend_, "lock:report", 10s);
  ASSERT_OK(token);
  ASSERT_TRUE(token->has_value());
  EXPECT_FALSE(redis::try_lock(*backend_, "lock:report", 10s)->has_value());  // held
  EXPECT_FALSE(*redis::unlock(*backend_, "lock:report", "not-the-token"));
  RawRedis raw = RawRedis::from_url(url_);
  EXPECT_EQ(raw.command({"GET", namespace_ + "lock:report"}).str, **token);  // still held
  EXPECT_TRUE(*redis::unlock(*backend_, "lock:report", **token));
  EXPECT_FALSE(*redis::unlock(*backend_, "lock:report", **token));  // already released
  EXPECT_TRUE(redis::try_lock(*backend_, "lock:report", 10s)->has_value());
  EXPECT_STATUS(redis::try_lock(*backend_, "lock:x", 0ms), StatusCode::kInvalidArgument);
}

TEST_F(RedisShared, AnExpiredLockHoldersUnlockLeavesTheNextOwnerAlone) {
  auto first = redis::try_lock(*backend_, "lock:job", 100ms);
  ASSERT_OK(first);
  ASSERT_TRUE(first->has_value());
  std::this_thread::sleep_for(250ms);  // the server's clock expires the lock
  auto second = redis::try_lock(*backend_, "lock:job", 10s);
  ASSERT_OK(second);
  ASSERT_TRUE(second->has_value());
  EXPECT_NE(**first, **second);
  EXPECT_FALSE(*redis::unlock(*backend_, "lock:job", **first));
  EXPECT_FALSE(redis::try_lock(*backend_, "lock:job", 10s)->has_value());  // second holds it
}

TEST_F(RedisShared, StatsReportServerFieldsAndPoolCounters) {
  ASSERT_OK(backend_->set("k", "v", Expiry::never()));
  auto stats = backend_->stats();
  ASSERT_OK(stats);
  std::map<std::string, std::string> m(stats->begin(), stats->end());
  for (const char* field :
       {"server", "redis_version", "used_memory", "connected_clients", "keyspace_hits",
        "keyspace_misses", "keys", "pool.open", "pool.created", "pool.failures", "pool.down"}) {
    EXPECT_TRUE(m.contains(field)) << field;
  }
  EXPECT_GE(std::stoll(m["keys"]), 1);
  EXPECT_EQ(m["pool.down"], "false");
}

// ---- private servers ----

TEST(RedisPrivate, ClearWithAScopeLeavesOtherKeysAlone) {
  ServerProcess server = testing::start_private_redis();
  auto backend = backend_for({.locations = {testing::url_of(server)}, .clear_scope = "shop:*"});
  RawRedis raw("127.0.0.1", server.port());
  raw.command({"SET", "session:1", "keep"});
  raw.command({"SET", "shop:1:a", "drop"});
  raw.command({"SET", "shop:1:b", "drop"});
  ASSERT_OK(backend->clear());
  EXPECT_EQ(raw.command({"EXISTS", "shop:1:a", "shop:1:b"}).integer, 0);
  EXPECT_EQ(raw.command({"GET", "session:1"}).str, "keep");
  EXPECT_EQ(raw.calls("flushdb"), 0);
  EXPECT_EQ(raw.calls("keys"), 0);
}

TEST(RedisPrivate, ClearWithoutAScopeFlushesOnlyItsOwnDatabase) {
  ServerProcess server = testing::start_private_redis();
  auto backend = backend_for({.locations = {testing::url_of(server, 3)}});
  RawRedis db3("127.0.0.1", server.port(), 3);
  RawRedis db4("127.0.0.1", server.port(), 4);
  db3.command({"SET", "a", "1"});
  db4.command({"SET", "b", "2"});
  ASSERT_OK(backend->clear());
  EXPECT_EQ(db3.command({"DBSIZE"}).integer, 0);
  EXPECT_EQ(db4.command({"GET", "b"}).str, "2");
  EXPECT_EQ(db4.calls("flushall"), 0);
}

// A cache configured with key_prefix = "shop" shares database 2 with other data: clear()
// must remove the cache's keys only. It used to FLUSHDB and delete the other data too.
TEST(RedisPrivate, ClearOfAPrefixedCacheKeepsOtherKeysInItsDatabase) {
  ServerProcess server = testing::start_private_redis();
  auto caches = Caches::from_toml("[caches.default]\nbackend = \"redis\"\nlocation = \"" +
                                      testing::url_of(server, 2) + "\"\nkey_prefix = \"sh*p\"\n",
                                  "caches.toml");
  Cache& cache = caches.default_cache();
  ASSERT_TRUE(cache.set("hello", "world"));
  RawRedis raw("127.0.0.1", server.port(), 2);
  raw.command({"SET", "foreign", "keep"});
  raw.command({"SET", "shop:1:hello", "keep: another prefix that the glob * would match"});
  ASSERT_OK(cache.strict().clear());
  EXPECT_FALSE(cache.get("hello").has_value());
  EXPECT_EQ(raw.command({"GET", "foreign"}).str, "keep");
  EXPECT_EQ(raw.command({"EXISTS", "shop:1:hello"}).integer, 1);
  EXPECT_EQ(raw.calls("flushdb"), 0);
}

TEST(RedisPrivate, ClearFlushesTheDatabaseOnlyWhenAskedTo) {
  ServerProcess server = testing::start_private_redis();
  auto caches = Caches::from_toml(
      "[caches.default]\nbackend = \"redis\"\nlocation = \"" + testing::url_of(server, 2) +
          "\"\nkey_prefix = \"shop\"\noptions = { clear_flushes_db = true }\n",
      "caches.toml");
  Cache& cache = caches.default_cache();
  ASSERT_TRUE(cache.set("hello", "world"));
  RawRedis raw("127.0.0.1", server.port(), 2);
  raw.command({"SET", "foreign", "gone"});
  ASSERT_OK(cache.strict().clear());
  EXPECT_EQ(raw.command({"DBSIZE"}).integer, 0);
  EXPECT_EQ(raw.calls("flushdb"), 1);
}

TEST(RedisPrivate, PatternScansTakeFewRoundTripsAndNeverUseKeys) {
  ServerProcess server = testing::start_private_redis();
  auto backend = backend_for({.locations = {testing::url_of(server)}});
  std::vector<std::string> names;
  for (int i = 0; i < 10'000; ++i) names.push_back("k" + std::to_string(i));
  std::vector<KeyValue> items;
  for (const auto& n : names) items.push_back({n, "v"});
  ASSERT_TRUE(backend->set_many(items, Expiry::never())->empty());
  EXPECT_EQ(*redis::erase_pattern(*backend, "k*"), 10'000u);
  RawRedis raw("127.0.0.1", server.port());
  EXPECT_EQ(raw.command({"DBSIZE"}).integer, 0);
  EXPECT_LE(raw.calls("scan"), 40);  // COUNT 1000; django-redis' COUNT 10 would take ~1600
  EXPECT_EQ(raw.calls("keys"), 0);
  EXPECT_EQ(raw.calls("set"), 10'000);  // set_many sends SETs (with PX when needed), no MSET
}

TEST(RedisPrivate, IncrScriptIsLoadedOnceThenRunByItsDigest) {
  ServerProcess server = testing::start_private_redis();
  auto backend = backend_for({.locations = {testing::url_of(server)}});
  ASSERT_OK(backend->set("n", "1", Expiry::never()));
  for (int i = 0; i < 3; ++i) ASSERT_OK(backend->incr("n", 1));
  RawRedis raw("127.0.0.1", server.port());
  EXPECT_EQ(raw.calls("eval"), 1);  // the first EVALSHA got NOSCRIPT; EVAL cached the script
  EXPECT_EQ(raw.calls("evalsha"), 3);
  raw.command({"SCRIPT", "FLUSH"});  // an operator flushes the cache: incr still works
  EXPECT_EQ(*backend->incr("n", 10), 14);
}

TEST(RedisPrivate, EraseIfValueIsOneCompareAndDeleteScript) {
  ServerProcess server = testing::start_private_redis();
  auto backend = backend_for({.locations = {testing::url_of(server)}});
  ASSERT_OK(backend->set("lease", "token-a", Expiry::never()));
  EXPECT_FALSE(*backend->erase_if_value("lease", "token-b"));
  EXPECT_EQ(backend->get("lease")->value().view(), "token-a");
  EXPECT_TRUE(*backend->erase_if_value("lease", "token-a"));
  EXPECT_FALSE(backend->get("lease")->has_value());
  RawRedis raw("127.0.0.1", server.port());
  // Each call is the script (the first EVALSHA answered NOSCRIPT, then EVAL, then EVALSHA),
  // not a read-compare-erase from the client.
  EXPECT_EQ(raw.calls("eval"), 1);
  EXPECT_EQ(raw.calls("evalsha"), 2);
}

TEST(RedisPrivate, ReadsGoToTheReplicaAndFallBackToThePrimary) {
  // The "replica" is a separate server, so where each call went is visible.
  ServerProcess primary = testing::start_private_redis();
  ServerProcess replica = testing::start_private_redis();
  auto backend = backend_for(
      {.locations = {testing::url_of(primary), testing::url_of(replica)}, .retry_after = 50ms});
  RawRedis on_primary("127.0.0.1", primary.port());
  RawRedis on_replica("127.0.0.1", replica.port());
  on_replica.command({"SET", "k", "from replica"});
  on_primary.command({"SET", "k", "from primary"});
  EXPECT_EQ((*backend->get("k"))->view(), "from replica");
  EXPECT_TRUE(*backend->contains("k"));
  ASSERT_OK(backend->set("written", "w", Expiry::never()));
  EXPECT_EQ(on_primary.command({"GET", "written"}).str, "w");
  EXPECT_EQ(on_replica.command({"EXISTS", "written"}).integer, 0);
  replica.kill();
  EXPECT_EQ((*backend->get("k"))->view(), "from primary");
}

TEST(RedisPrivate, AUrlNamingTwoServersMakesTheSecondAReplica) {
  ServerProcess primary = testing::start_private_redis();
  ServerProcess replica = testing::start_private_redis();
  RawRedis("127.0.0.1", replica.port()).command({"SET", ":1:k", "from replica"});
  auto caches = Caches::from_url(testing::url_of(primary) + "," + testing::url_of(replica));
  Cache& cache = caches.default_cache();
  EXPECT_EQ(cache.get("k")->view(), "from replica");
  ASSERT_TRUE(cache.set("w", "v"));
  EXPECT_EQ(RawRedis("127.0.0.1", primary.port()).command({"GET", ":1:w"}).str, "v");
}

TEST(RedisPrivate, ConnectsOverAUnixSocketToTheGivenDatabase) {
  std::string socket = (std::filesystem::temp_directory_path() /
                        ("cachekit-redis-" + std::to_string(::getpid()) + ".sock"))
                           .string();
  ServerProcess server = testing::start_private_redis({"--unixsocket", socket});
  auto backend = backend_for({.locations = {"unix://" + socket + "?db=1"}});
  Status stored = backend->set("k", "v", Expiry::never());
  ASSERT_OK(stored);
  RawRedis raw("127.0.0.1", server.port(), 1);
  EXPECT_EQ(raw.command({"GET", "k"}).str, "v");
}

TEST(RedisPrivate, AuthenticatesWithPasswordsAndAclUsers) {
  ServerProcess server = testing::start_private_redis(
      {"--requirepass", "s3cret", "--user", "app", "on", ">app-pass", "~*", "+@all"});
  std::string address = "127.0.0.1:" + std::to_string(server.port());
  auto password = backend_for({.locations = {"redis://:s3cret@" + address + "/0"}});
  EXPECT_OK(password->set("k", "v", Expiry::never()));
  auto user = backend_for({.locations = {"redis://app:app-pass@" + address + "/0"}});
  EXPECT_EQ((*user->get("k"))->view(), "v");
  auto wrong = backend_for({.locations = {"redis://:nope@" + address + "/0"}});
  auto refused = wrong->get("k");
  EXPECT_STATUS(refused, StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("AUTH failed: WRONGPASS"));
  EXPECT_THAT(refused.status().message(), ::testing::Not(HasSubstr("nope")));
  auto anonymous = backend_for({.locations = {"redis://" + address + "/0"}});
  EXPECT_THAT(anonymous->get("k").status().message(), HasSubstr("NOAUTH"));
}

// ---- the command-line tool on a Redis cache ----

#ifdef CACHEKIT_CLI_PATH
struct CliRun {
  int code = -1;
  std::string out;
};

// Runs `cachekit <args>` with CACHEKIT_CACHE_URL=<url> (arguments are plain words here).
CliRun run_cli(const std::string& url, const std::string& args) {
  std::string command = "env -u CACHEKIT_CONFIG CACHEKIT_CACHE_URL='" + url + "' '" +
                        CACHEKIT_CLI_PATH + "' " + args + " 2>/dev/null";
  CliRun run;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) run.out.append(buffer, n);
  int status = ::pclose(pipe);
  run.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST(RedisCli, KeysTtlDeleteIncrStatsAndClearWork) {
  ServerProcess server = testing::start_private_redis();
  std::string url = testing::url_of(server, 5);
  EXPECT_EQ(run_cli(url, "set greeting hello").code, 0);
  CliRun get = run_cli(url, "get greeting");
  EXPECT_EQ(get.code, 0);
  EXPECT_EQ(get.out, "hello");
  // Whole seconds, rounded down: a slow process start (sanitizers) may already make it 299.
  EXPECT_THAT(run_cli(url, "ttl greeting").out,
              ::testing::AnyOf(::testing::Eq("300\n"), ::testing::Eq("299\n")));
  EXPECT_EQ(run_cli(url, "set other x --timeout never").code, 0);
  EXPECT_EQ(run_cli(url, "ttl other").out, "never\n");
  EXPECT_EQ(run_cli(url, "keys").out, "greeting\nother\n");
  EXPECT_EQ(run_cli(url, "delete greeting").code, 0);
  EXPECT_EQ(run_cli(url, "get greeting").code, 1);
  EXPECT_EQ(run_cli(url, "set n 41").code, 0);
  EXPECT_EQ(run_cli(url, "incr n").out, "42\n");
  CliRun stats = run_cli(url, "stats");
  EXPECT_EQ(stats.code, 0);
  EXPECT_THAT(stats.out, HasSubstr("backend.used_memory "));
  EXPECT_THAT(stats.out, HasSubstr("backend.pool.created 1"));
  RawRedis raw("127.0.0.1", server.port(), 5);
  EXPECT_EQ(raw.command({"GET", ":1:n"}).str, "42");
  EXPECT_EQ(run_cli(url, "clear").code, 0);
  EXPECT_EQ(raw.command({"DBSIZE"}).integer, 0);
  server.kill();
  EXPECT_EQ(run_cli(url, "get n").code, 3);  // the store failed: reported, not a miss
}

// The same through the command-line tool, with a configuration file.
TEST(RedisCli, ClearWithAKeyPrefixLeavesForeignKeys) {
  ServerProcess server = testing::start_private_redis();
  std::string config = ::testing::TempDir() + "redis-clear-" + std::to_string(::getpid()) + ".toml";
  {
    std::FILE* f = std::fopen(config.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::string text = "[caches.default]\nbackend = \"redis\"\nlocation = \"" +
                       testing::url_of(server, 2) + "\"\nkey_prefix = \"shop\"\n";
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
  auto cli = [&](const std::string& args) {
    std::string command = "env -u CACHEKIT_CACHE_URL '" + std::string(CACHEKIT_CLI_PATH) +
                          "' --config '" + config + "' " + args + " >/dev/null 2>&1";
    int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  EXPECT_EQ(cli("set hello world"), 0);
  RawRedis raw("127.0.0.1", server.port(), 2);
  raw.command({"SET", "foreign", "keep"});
  EXPECT_EQ(raw.command({"EXISTS", "shop:1:hello"}).integer, 1);
  EXPECT_EQ(cli("clear"), 0);
  EXPECT_EQ(raw.command({"EXISTS", "shop:1:hello"}).integer, 0);
  EXPECT_EQ(raw.command({"GET", "foreign"}).str, "keep");
  std::remove(config.c_str());
}
#endif

}  // namespace
}  // namespace cachekit
