// sentinel:// URLs: what they mean, and the message each kind of mistake gets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "backends/redis/url.h"
#include "cachekit/backends/redis.h"
#include "support/status_matchers.h"

namespace cachekit::redis_internal {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(SentinelUrl, TheLessonsDatabaseTwoThroughTwoSentinels) {
  auto parsed = parse_sentinel_url("sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
  ASSERT_OK(parsed);
  ASSERT_EQ(parsed->sentinels.size(), 2u);
  EXPECT_EQ(parsed->sentinels[0].host, "127.0.0.1");
  EXPECT_EQ(parsed->sentinels[0].port, 26379);
  EXPECT_EQ(parsed->sentinels[1].port, 26380);
  EXPECT_EQ(parsed->master_name, "mymaster");
  EXPECT_EQ(parsed->db, 2);
  EXPECT_FALSE(parsed->read_from_replicas);
  EXPECT_EQ(parsed->describe(), "sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2");
  Endpoint primary = parsed->endpoint("10.0.0.5", 6380);
  EXPECT_EQ(primary.describe(), "10.0.0.5:6380/2");
}

TEST(SentinelUrl, DefaultsArePort26379AndDatabaseZero) {
  auto parsed = parse_sentinel_url("SENTINEL://sentinel-a,[::1]/cache");
  ASSERT_OK(parsed);
  ASSERT_EQ(parsed->sentinels.size(), 2u);
  EXPECT_EQ(parsed->sentinels[0].host, "sentinel-a");
  EXPECT_EQ(parsed->sentinels[0].port, 26379);
  EXPECT_EQ(parsed->sentinels[1].host, "::1");
  EXPECT_EQ(parsed->db, 0);
  EXPECT_OK(parse_sentinel_url("sentinel://h:1/m/"));
}

TEST(SentinelUrl, CredentialsAndReplicasAreForTheDataServers) {
  auto parsed = parse_sentinel_url("sentinel://app:p%40ss@h1:1,h2:2/m/3?replicas=true");
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->user, "app");
  EXPECT_EQ(parsed->password, "p@ss");
  EXPECT_TRUE(parsed->read_from_replicas);
  Endpoint replica = parsed->endpoint("h3", 7000);
  EXPECT_EQ(replica.user, "app");
  EXPECT_EQ(replica.password, "p@ss");
  EXPECT_EQ(replica.db, 3);
  EXPECT_THAT(parsed->describe(), Not(HasSubstr("p@ss")));
}

struct BadUrl {
  const char* url;
  const char* problem;
};

class SentinelBadUrl : public ::testing::TestWithParam<BadUrl> {};

TEST_P(SentinelBadUrl, IsRefusedNamingTheProblem) {
  auto parsed = parse_sentinel_url(GetParam().url);
  EXPECT_STATUS(parsed, StatusCode::kInvalidArgument);
  EXPECT_THAT(parsed.status().message(), HasSubstr("invalid Redis URL"));
  EXPECT_THAT(parsed.status().message(), HasSubstr(GetParam().problem));
  EXPECT_THAT(parsed.status().message(), Not(HasSubstr("hunter2")));
}

INSTANTIATE_TEST_SUITE_P(
    Mistakes, SentinelBadUrl,
    ::testing::Values(BadUrl{"sentinel:///mymaster", "missing the sentinel addresses"},
                      BadUrl{"sentinel://h:1", "missing the master name"},
                      BadUrl{"sentinel://h:1/", "missing the master name"},
                      BadUrl{"sentinel://h:1,,h:2/m", "an empty sentinel address"},
                      BadUrl{"sentinel://h:1,h:x/m", "the port must be 1-65535, got \"x\""},
                      BadUrl{"sentinel://h:/m", "empty port after ':'"},
                      BadUrl{"sentinel://:1/m", "a sentinel address without a host"},
                      BadUrl{"sentinel://h:1/m/two", "a database number, got \"two\""},
                      BadUrl{"sentinel://h:1/m/2/3", "a database number, got \"2/3\""},
                      BadUrl{"sentinel://h:1/m?db=2", "unknown query parameter \"db\""},
                      BadUrl{"sentinel://h:1/m?replicas=yes", "replicas must be true or false"},
                      BadUrl{"sentinel://hunter2@h:1/m", "sentinel://:password@host"},
                      BadUrl{"sentinel://:hunter2@h:1/m#x", "a fragment"},
                      BadUrl{"redis://h:1/m", "expected a sentinel:// URL"}));

TEST(SentinelUrl, MustBeTheOnlyLocationOfABackend) {
  auto backend = make_redis_backend(
      {.locations = {"sentinel://127.0.0.1:1/mymaster/2", "redis://127.0.0.1:2/2"}});
  EXPECT_STATUS(backend, StatusCode::kInvalidArgument);
  EXPECT_THAT(backend.status().message(), HasSubstr("must be the only one"));
  auto bad = make_redis_backend({.locations = {"sentinel://127.0.0.1:1"}});
  EXPECT_STATUS(bad, StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("missing the master name"));
}

}  // namespace
}  // namespace cachekit::redis_internal
