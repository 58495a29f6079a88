// The Redis Cluster backend against real clusters: the shared one of scripts/test-servers
// (each test in a key namespace or key prefix of its own) for routing, batches, scoped clear,
// replica reads, configuration and the CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "backends/redis/slots.h"
#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "cachekit/caches.h"
#include "support/redis_test_support.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using testing::RawRedis;

// "127.0.0.1:p1,127.0.0.1:p2,..." → the nodes' host:port.
std::vector<std::string> cluster_nodes() {
  std::string nodes = testing::shared_redis_url("CACHEKIT_TEST_REDIS_CLUSTER");
  std::vector<std::string> out;
  for (std::size_t at = 0; at != std::string::npos;) {
    auto comma = nodes.find(',', at);
    out.push_back(nodes.substr(at, comma == std::string::npos ? comma : comma - at));
    at = comma == std::string::npos ? comma : comma + 1;
  }
  return out;
}

std::vector<std::string> seeds() {
  std::vector<std::string> out;
  for (const auto& node : cluster_nodes()) out.push_back("redis://" + node);
  return out;
}

RawRedis raw_node(const std::string& node) {
  auto colon = node.rfind(':');
  return RawRedis(node.substr(0, colon), std::stoi(node.substr(colon + 1)));
}

std::shared_ptr<Backend> cluster_backend(std::string key_namespace,
                                         RedisClusterOptions cluster = {}) {
  auto backend = make_redis_cluster_backend(
      {.locations = seeds(), .io_timeout = 2s, .key_namespace = std::move(key_namespace)}, cluster);
  EXPECT_OK(backend);
  return backend.ok() ? *backend : nullptr;
}

// Keys under `prefix` per node that holds them as a primary (replicas are skipped).
std::map<std::string, long long> keys_per_primary(const std::string& prefix) {
  std::map<std::string, long long> out;
  for (const auto& node : cluster_nodes()) {
    RawRedis raw = raw_node(node);
    if (raw.info_field("replication", "role") != "master") continue;
    std::string cursor = "0";
    do {
      auto page = raw.command({"SCAN", cursor, "MATCH", prefix + "*", "COUNT", "1000"});
      cursor = page.elements[0].str;
      out[node] += static_cast<long long>(page.elements[1].elements.size());
    } while (cursor != "0");
  }
  return out;
}

TEST(RedisCluster, RefusesADatabaseOtherThanZero) {
  auto backend = make_redis_cluster_backend({.locations = {"redis://127.0.0.1:7000/2"}});
  EXPECT_STATUS(backend, StatusCode::kInvalidArgument);
  EXPECT_THAT(backend.status().message(), HasSubstr("Redis Cluster has only database 0"));
}

TEST(RedisCluster, KeysSpreadOverEveryPrimaryAndKeysFindThemAll) {
  std::string ns = testing::unique_namespace("cluster_test");
  auto backend = cluster_backend(ns);
  for (int i = 0; i < 300; ++i)
    ASSERT_OK(backend->set("k" + std::to_string(i), "v", Expiry::never()));
  auto spread = keys_per_primary(ns);
  ASSERT_EQ(spread.size(), 3U);
  for (const auto& [node, count] : spread) EXPECT_GT(count, 50) << node;
  auto keys = backend->keys("k1*");
  ASSERT_OK(keys);
  EXPECT_EQ(keys->size(), 111U);  // k1, k10-k19, k100-k199
  ASSERT_OK(backend->clear());
}

TEST(RedisCluster, BatchesSplitByNodeAndKeepTheInputOrder) {
  auto backend = cluster_backend(testing::unique_namespace("cluster_test"));
  std::vector<std::string> names, stored;
  std::vector<KeyValue> items;
  for (int i = 0; i < 200; ++i) {
    names.push_back("key" + std::to_string(i));
    stored.push_back(names.back() + "-value");
  }
  for (int i = 0; i < 200; i += 2) items.push_back({names[i], stored[i]});
  auto failed = backend->set_many(items, Expiry::never());
  ASSERT_OK(failed);
  EXPECT_TRUE(failed->empty());
  std::vector<std::string_view> keys(names.begin(), names.end());
  auto values = backend->get_many(keys);
  ASSERT_OK(values);
  ASSERT_EQ(values->size(), 200U);
  for (int i = 0; i < 200; ++i) {
    if (i % 2 == 0) {
      ASSERT_TRUE((*values)[i].has_value()) << i;
      EXPECT_EQ((*values)[i]->view(), names[i] + "-value");
    } else {
      EXPECT_FALSE((*values)[i].has_value()) << i;
    }
  }
  auto erased = backend->erase_many(keys);
  ASSERT_OK(erased);
  EXPECT_EQ(*erased, 100U);
  EXPECT_TRUE(backend->keys("*")->empty());
}

TEST(RedisCluster, HashTagsKeepKeysOnOneNode) {
  std::string ns = testing::unique_namespace("cluster_test");
  auto backend = cluster_backend(ns);
  for (int i = 0; i < 30; ++i)
    ASSERT_OK(backend->set("{cart}" + std::to_string(i), "v", Expiry::never()));
  auto spread = keys_per_primary(ns);
  long long nodes_with_keys = 0;
  for (const auto& [node, count] : spread) nodes_with_keys += count > 0 ? 1 : 0;
  EXPECT_EQ(nodes_with_keys, 1);
  ASSERT_OK(backend->clear());
}

TEST(RedisCluster, ClearRemovesOnlyItsNamespaceOnEveryPrimary) {
  std::string ns = testing::unique_namespace("cluster_test");
  std::string foreign_ns = testing::unique_namespace("cluster_test_foreign");
  auto backend = cluster_backend(ns);
  auto foreign = cluster_backend(foreign_ns);
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK(backend->set("k" + std::to_string(i), "v", Expiry::never()));
    ASSERT_OK(foreign->set("k" + std::to_string(i), "v", Expiry::never()));
  }
  ASSERT_OK(backend->clear());
  for (const auto& [node, count] : keys_per_primary(ns)) EXPECT_EQ(count, 0) << node;
  long long left = 0;
  for (const auto& [node, count] : keys_per_primary(foreign_ns)) left += count;
  EXPECT_EQ(left, 100);
  ASSERT_OK(foreign->clear());
}

TEST(RedisCluster, ErasePatternRemovesMatchesOnEveryPrimary) {
  std::string ns = testing::unique_namespace("cluster_test");
  auto backend = cluster_backend(ns);
  for (int i = 0; i < 200; ++i) {
    ASSERT_OK(backend->set("drop:" + std::to_string(i), "v", Expiry::never()));
    ASSERT_OK(backend->set("keep:" + std::to_string(i), "v", Expiry::never()));
  }
  auto removed = redis::erase_pattern(*backend, "drop:*");
  ASSERT_OK(removed);
  EXPECT_EQ(*removed, 200U);
  EXPECT_TRUE(backend->keys("drop:*")->empty());
  EXPECT_EQ(backend->keys("keep:*")->size(), 200U);
  Cache cache(backend, {.key_prefix = "p"});
  ASSERT_TRUE(cache.set("user:1", "a"));
  ASSERT_TRUE(cache.set("item:1", "b"));
  EXPECT_EQ(*redis::erase_pattern(cache, "user:*"), 1U);
  EXPECT_TRUE(cache.contains("item:1"));
  ASSERT_OK(backend->clear());
}

TEST(RedisCluster, IncrAndScriptsRunOnTheKeysNode) {
  auto backend = cluster_backend(testing::unique_namespace("cluster_test"));
  for (int i = 0; i < 20; ++i) {
    std::string key = "counter" + std::to_string(i);
    ASSERT_OK(backend->set(key, "41", Expiry::never()));
    EXPECT_EQ(*backend->incr(key, 1), 42);
    EXPECT_TRUE(*backend->erase_if_value(key, "42"));
  }
  EXPECT_STATUS(backend->incr("absent", 1), StatusCode::kNotFound);
}

// Replication is asynchronous: the test polls (with a deadline) until a replica has the key.
TEST(RedisCluster, ReadsGoToReplicasWhenAsked) {
  auto backend =
      cluster_backend(testing::unique_namespace("cluster_test"), {.read_from_replicas = true});
  ASSERT_OK(backend->set("replicated", "yes", Expiry::never()));
  auto replica_gets = [] {
    long long total = 0;
    for (const auto& node : cluster_nodes()) {
      RawRedis raw = raw_node(node);
      if (raw.info_field("replication", "role") == "slave") total += raw.calls("get");
    }
    return total;
  };
  const long long before = replica_gets();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  std::optional<Bytes> value;
  while (!value && std::chrono::steady_clock::now() < deadline) {
    auto got = backend->get("replicated");
    ASSERT_OK(got);
    value = *got;
  }
  ASSERT_TRUE(value.has_value());
  EXPECT_EQ(value->view(), "yes");
  for (int i = 0; i < 50; ++i) ASSERT_OK(backend->get("replicated"));
  EXPECT_GE(replica_gets() - before, 51);
  ASSERT_OK(backend->clear());
}

TEST(RedisCluster, StatsHaveALineSetPerNode) {
  auto backend = cluster_backend(testing::unique_namespace("cluster_test"));
  auto stats = backend->stats();
  ASSERT_OK(stats);
  std::set<std::string> roles;
  int nodes = 0;
  for (const auto& [name, value] : *stats) {
    if (name.ends_with(".serves")) {
      ++nodes;
      roles.insert(value);
    }
  }
  EXPECT_EQ(nodes, 6);
  EXPECT_EQ(roles, (std::set<std::string>{"primary", "replica"}));
  EXPECT_EQ(backend->info().name, "redis_cluster");
}

// ---- configuration and the command-line tool ----

std::string cluster_url() {
  std::string url = "redis-cluster://";
  for (const auto& node : cluster_nodes()) url += node + ",";
  url.pop_back();
  return url;
}

TEST(RedisClusterConfig, AUrlOrTheClusterOptionMakesAClusterCache) {
  Caches from_url = Caches::from_url(cluster_url());
  Cache& cache = from_url.default_cache();
  EXPECT_EQ(cache.backend_info().name, "redis_cluster");
  std::string key = testing::unique_namespace("cluster_config");
  ASSERT_TRUE(cache.set(key, "via url"));
  EXPECT_EQ(cache.get(key)->view(), "via url");
  EXPECT_TRUE(cache.erase(key));

  std::string path = ::testing::TempDir() + "cluster_config.toml";
  std::ofstream(path) << "[caches.default]\nbackend = \"redis\"\nlocation = [\"redis://"
                      << cluster_nodes()[1] << "\"]\nkey_prefix = \"" << key
                      << "\"\noptions = { cluster = true, read_from_replicas = true }\n";
  Caches from_file = Caches::from_file(path);
  EXPECT_EQ(from_file.default_cache().backend_info().name, "redis_cluster");
  ASSERT_TRUE(from_file.default_cache().set("k", "via option"));
  EXPECT_TRUE(from_file.default_cache().clear());
  std::remove(path.c_str());
}

TEST(RedisClusterConfig, ADatabaseNumberIsRefusedClearly) {
  try {
    (void)Caches::from_url("redis-cluster://" + cluster_nodes()[0] + "/2");
    ADD_FAILURE() << "a database number was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Redis Cluster has only database 0"));
  }
}

#ifdef CACHEKIT_CLI_PATH
// `cachekit <args>` on a cluster cache scoped by a key prefix (clear must not touch the
// shared cluster's other keys); stdout, and the exit code.
std::pair<int, std::string> cli(const std::string& config, const std::string& args) {
  std::string command = "env -u CACHEKIT_CACHE_URL '" + std::string(CACHEKIT_CLI_PATH) +
                        "' --config '" + config + "' " + args + " 2>/dev/null";
  std::string out;
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(RedisClusterCli, KeysGetTtlDeleteClearAndStatsWork) {
  std::string prefix = "cli" + std::to_string(::getpid());
  std::string config = ::testing::TempDir() + "cluster_cli.toml";
  std::ofstream(config) << "[caches.default]\nurl = \"" << cluster_url() << "\"\nkey_prefix = \""
                        << prefix << "\"\n";
  ASSERT_EQ(cli(config, "set greeting hello").first, 0);
  ASSERT_EQ(cli(config, "set other x --timeout never").first, 0);
  EXPECT_EQ(cli(config, "get greeting"), std::make_pair(0, std::string("hello")));
  // Whole seconds, rounded down: a slow process start (sanitizers) may already make it 299.
  EXPECT_THAT(cli(config, "ttl greeting").second,
              ::testing::AnyOf(::testing::Eq("300\n"), ::testing::Eq("299\n")));
  EXPECT_EQ(cli(config, "ttl other").second, "never\n");
  EXPECT_EQ(cli(config, "keys").second, "greeting\nother\n");
  EXPECT_EQ(cli(config, "delete greeting").first, 0);
  EXPECT_EQ(cli(config, "get greeting").first, 1);
  auto stats = cli(config, "stats");
  EXPECT_EQ(stats.first, 0);
  EXPECT_THAT(stats.second, HasSubstr("backend.cluster_primaries 3"));
  EXPECT_EQ(cli(config, "clear").first, 0);
  EXPECT_EQ(cli(config, "keys").second, "");
  std::remove(config.c_str());
}
#endif

}  // namespace
}  // namespace cachekit
