// The Redis backend without a server: URL parsing (good and bad URLs, exact messages),
// option checking, and configuration through the registry (caches.toml, url fields,
// CACHEKIT_CACHE_URL).
#include "cachekit/backends/redis.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/redis/url.h"
#include "cachekit/caches.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using redis_internal::parse_url;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(RedisUrl, ParsesHostPortAndDatabase) {
  auto e = parse_url("redis://cache.internal:6380/2");
  ASSERT_OK(e);
  EXPECT_EQ(e->host, "cache.internal");
  EXPECT_EQ(e->port, 6380);
  EXPECT_EQ(e->db, 2);
  EXPECT_FALSE(e->is_unix());
  EXPECT_EQ(e->describe(), "cache.internal:6380/2");
}

TEST(RedisUrl, DefaultsToPort6379AndDatabase0) {
  for (const char* url : {"redis://h", "redis://h/", "REDIS://h"}) {
    auto e = parse_url(url);
    ASSERT_OK(e) << url;
    EXPECT_EQ(e->port, 6379) << url;
    EXPECT_EQ(e->db, 0) << url;
  }
}

TEST(RedisUrl, DatabaseMayComeFromTheQuery) {
  auto e = parse_url("redis://h:1?db=5");
  ASSERT_OK(e);
  EXPECT_EQ(e->db, 5);
}

TEST(RedisUrl, DecodesUserAndPassword) {
  auto e = parse_url("redis://app:p%40ss%2Fw%3Ard@h:7000/1");
  ASSERT_OK(e);
  EXPECT_EQ(e->user, "app");
  EXPECT_EQ(e->password, "p@ss/w:rd");
  EXPECT_EQ(e->host, "h");
  auto password_only = parse_url("redis://:secret@h");
  ASSERT_OK(password_only);
  EXPECT_EQ(password_only->user, "");
  EXPECT_EQ(password_only->password, "secret");
}

TEST(RedisUrl, AcceptsBracketedIpv6) {
  auto e = parse_url("redis://[::1]:6390/3");
  ASSERT_OK(e);
  EXPECT_EQ(e->host, "::1");
  EXPECT_EQ(e->port, 6390);
  EXPECT_EQ(e->describe(), "[::1]:6390/3");
}

TEST(RedisUrl, ParsesUnixSockets) {
  auto e = parse_url("unix:///run/redis/redis.sock?db=4");
  ASSERT_OK(e);
  EXPECT_TRUE(e->is_unix());
  EXPECT_EQ(e->socket_path, "/run/redis/redis.sock");
  EXPECT_EQ(e->db, 4);
  EXPECT_EQ(e->describe(), "unix:/run/redis/redis.sock?db=4");
  auto with_password = parse_url("unix://:pw@/tmp/r.sock");
  ASSERT_OK(with_password);
  EXPECT_EQ(with_password->password, "pw");
  EXPECT_EQ(with_password->socket_path, "/tmp/r.sock");
}

struct BadUrl {
  const char* url;
  const char* message;
};

TEST(RedisUrl, RefusesBadUrlsWithExactMessages) {
  const BadUrl cases[] = {
      {"rediss://h:6379/0",
       "invalid Redis URL \"rediss://h:6379/0\": rediss:// (TLS) is not supported: hiredis 0.14 "
       "has no TLS; reach the server through a local TLS tunnel (e.g. stunnel) with redis://"},
      {"http://h",
       "invalid Redis URL \"http://h\": unsupported scheme \"http\"; expected "
       "redis://[[user]:password@]host[:port][/db] or "
       "unix:///path/to/socket[?db=N]"},
      {"127.0.0.1:6379",
       "invalid Redis URL \"127.0.0.1:6379\": expected "
       "redis://[[user]:password@]host[:port][/db] or "
       "unix:///path/to/socket[?db=N]"},
      {"redis://h:x", "invalid Redis URL \"redis://h:x\": the port must be 1-65535, got \"x\""},
      {"redis://h:70000",
       "invalid Redis URL \"redis://h:70000\": the port must be 1-65535, got \"70000\""},
      {"redis://h:/0", "invalid Redis URL \"redis://h:/0\": empty port after ':'"},
      {"redis://:6379/0",
       "invalid Redis URL \"redis://:6379/0\": missing host, e.g. redis://127.0.0.1:6379/0"},
      {"redis://h/abc",
       "invalid Redis URL \"redis://h/abc\": the path must be a database number, got \"/abc\""},
      {"redis://h/-1",
       "invalid Redis URL \"redis://h/-1\": the path must be a database number, got \"/-1\""},
      {"redis://h?db=x",
       "invalid Redis URL \"redis://h?db=x\": the database must be a non-negative integer, got "
       "\"x\""},
      {"redis://h/1?db=2", "invalid Redis URL \"redis://h/1?db=2\": the database is given twice"},
      {"redis://h?timeout=5",
       "invalid Redis URL \"redis://h?timeout=5\": unknown query parameter \"timeout\"; only "
       "db=N is understood"},
      {"redis://secret@h",
       "invalid Redis URL \"redis://***@h\": write redis://:password@host for a password, or "
       "redis://user:password@host for an ACL user"},
      {"redis://u:p%zz@h",
       "invalid Redis URL \"redis://u:***@h\": bad percent-encoding in the user or password "
       "('%' must be followed by two hex digits)"},
      {"redis://[::1:6379", "invalid Redis URL \"redis://[::1:6379\": unclosed '[' in the host"},
      {"redis://h#frag", "invalid Redis URL \"redis://h#frag\": a fragment ('#') is not allowed"},
      {"unix://host/tmp/s",
       "invalid Redis URL \"unix://host/tmp/s\": a unix:// URL has no host; write "
       "unix:///path/to/socket"},
      {"unix://",
       "invalid Redis URL \"unix://\": missing socket path, e.g. unix:///run/redis.sock"},
  };
  for (const auto& c : cases) {
    auto e = parse_url(c.url);
    ASSERT_STATUS(e, StatusCode::kInvalidArgument) << c.url;
    EXPECT_EQ(e.status().message(), c.message) << c.url;
  }
}

TEST(RedisUrl, MessagesNeverContainThePassword) {
  auto e = parse_url("redis://user:hunter2@h:bad/0");
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.status().message(), Not(HasSubstr("hunter2")));
  EXPECT_THAT(e.status().message(), HasSubstr("redis://user:***@h:bad/0"));
}

TEST(RedisBackendOptions, RefusesMissingLocationsAndBadValues) {
  auto none = make_redis_backend({});
  EXPECT_STATUS(none, StatusCode::kInvalidArgument);
  EXPECT_EQ(none.status().message(),
            "the redis backend needs a location, e.g. \"redis://127.0.0.1:6379/0\"");
  auto bad_url = make_redis_backend({.locations = {"redis://a:1/0", "redis://b:99999"}});
  EXPECT_THAT(bad_url.status().message(), HasSubstr("\"redis://b:99999\": the port must be"));
  auto zero = make_redis_backend({.locations = {"redis://a"}, .pool_size = 0});
  EXPECT_STATUS(zero, StatusCode::kInvalidArgument);
  auto slow_wait = make_redis_backend(
      {.locations = {"redis://a"}, .wait_replicas = 1, .wait_timeout = std::chrono::seconds(1)});
  EXPECT_EQ(slow_wait.status().message(), "redis: wait_timeout must be shorter than io_timeout");
}

TEST(RedisBackendOptions, DescribesItselfAsAnOutOfProcessStore) {
  // No server is contacted until the first call: a backend exists even for a dead address.
  auto backend = make_redis_backend({.locations = {"redis://127.0.0.1:1/0"}});
  ASSERT_OK(backend);
  const BackendInfo& info = (*backend)->info();
  EXPECT_EQ(info.name, "redis");
  EXPECT_TRUE(info.stores_values);
  EXPECT_TRUE(info.outlives_process);
  EXPECT_TRUE(info.supports_keys);
  EXPECT_TRUE(info.supports_stats);
  EXPECT_EQ(info.key_policy, KeyPolicy::kWarn);
}

TEST(RedisExtras, RefuseOtherBackends) {
  auto locmem = Caches::from_url("locmem://x");
  Backend& backend = locmem.default_cache().backend();
  auto erased = redis::erase_pattern(backend, "*");
  EXPECT_STATUS(erased, StatusCode::kInvalidArgument);
  EXPECT_EQ(erased.status().message(), "not a redis backend (it is \"locmem\")");
  EXPECT_STATUS(redis::try_lock(backend, "k", std::chrono::seconds(1)),
                StatusCode::kInvalidArgument);
  EXPECT_STATUS(redis::unlock(backend, "k", "t"), StatusCode::kInvalidArgument);
}

// ---- configuration ----

std::string config_error(std::string_view toml) {
  try {
    (void)Caches::from_toml(toml, "caches.toml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(RedisConfig, BuildsFromTomlWithOptions) {
  auto caches = Caches::from_toml(R"(
    [caches.default]
    backend = "redis"
    location = ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"]
    key_prefix = "shop"
    [caches.default.options]
    connect_timeout_ms = 50
    io_timeout_ms = 80
    pool_size = 64
    pool_wait_ms = 30
    retry_after_ms = 500
    down_after_failures = 2
    namespace = "app1:"
    clear_scope = "shop:*"
    wait_replicas = 1
    wait_timeout_ms = 20
  )",
                                  "caches.toml");
  EXPECT_EQ(caches.default_cache().backend_info().name, "redis");
}

TEST(RedisConfig, RefusesUnknownOptionsAndBadValues) {
  EXPECT_EQ(config_error("[caches.default]\nbackend = \"redis\"\nlocation = \"redis://h\"\n"
                         "options = { timeout = 5 }"),
            "caches.toml: cache 'default': field 'options.timeout': unknown option for the redis "
            "backend; the known options are connect_timeout_ms, io_timeout_ms, pool_size, "
            "pool_wait_ms, retry_after_ms, down_after_failures, namespace, clear_scope, "
            "clear_flushes_db, wait_replicas, wait_timeout_ms, cluster, read_from_replicas");
  EXPECT_EQ(config_error("[caches.default]\nbackend = \"redis\"\nlocation = \"redis://h\"\n"
                         "options = { io_timeout_ms = 0 }"),
            "caches.toml: cache 'default': field 'options.io_timeout_ms': must be between 1 and "
            "3600000, got 0");
  EXPECT_EQ(config_error("[caches.default]\nbackend = \"redis\""),
            "caches.toml: cache 'default': field 'location': the redis backend needs a server "
            "URL, e.g. location = \"redis://127.0.0.1:6379/0\" (more URLs add read replicas)");
  EXPECT_EQ(config_error("[caches.default]\nbackend = \"redis\"\nlocation = \"redis://h:0\""),
            "caches.toml: cache 'default': field 'location': invalid Redis URL \"redis://h:0\": "
            "the port must be 1-65535, got \"0\"");
}

TEST(RedisConfig, RefusesTlsUrlsWithTheReason) {
  EXPECT_EQ(config_error("[caches.default]\nurl = \"rediss://h:6379/0\""),
            "caches.toml: cache 'default': field 'url': rediss:// (TLS) is not supported: hiredis "
            "0.14 has no TLS; reach the server through a local TLS tunnel (e.g. stunnel) with "
            "redis://");
}

TEST(RedisConfig, UrlFieldAndCacheUrlSelectRedis) {
  auto from_toml = Caches::from_toml("[caches.default]\nurl = \"redis://127.0.0.1:1/3\"", "x");
  EXPECT_EQ(from_toml.default_cache().backend_info().name, "redis");
  auto from_url = Caches::from_url("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0");
  EXPECT_EQ(from_url.default_cache().backend_info().name, "redis");
  ::setenv("CACHEKIT_CACHE_URL", "redis://127.0.0.1:1/4", 1);
  ::unsetenv("CACHEKIT_CONFIG");
  auto from_env = Caches::from_environment();
  ::unsetenv("CACHEKIT_CACHE_URL");
  EXPECT_EQ(from_env.default_cache().backend_info().name, "redis");
}

}  // namespace
}  // namespace cachekit
