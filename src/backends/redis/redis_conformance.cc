// The Redis conformance cases. ctest runs the suite's tests as separate processes, two at a
// time, and other test binaries share the same server, so each backend gets a key_namespace
// of its own (pid + counter + time): it starts empty, and its clear() removes only its keys.
//
// Expiry: Redis keeps real time while the suite's clock is a ManualClock. In a few tests the
// clock is advanced without sleeping before pass_time() is asked for the rest (e.g. a 2 s
// entry, clock +1 s, then pass_time(1.1 s), expecting it gone — in real time only 1.1 s has
// passed). The largest such unslept advance is 1.4 s (IncrKeepsTheExpiry), so expiry_slack
// is 1.5 s: every pass_time() sleeps that much longer, which no "still alive" check minds
// (their entries have 10 s or more left).
#include <cachekit/backends/redis.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "conformance/backend_cases.h"

namespace cachekit::testing {
namespace {

std::string required_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') {
    throw std::runtime_error(std::string(name) +
                             " is not set: run the tests with `make test` (scripts/run-tests), "
                             "which starts the test servers and sets it");
  }
  return value;
}

std::string unique_namespace() {
  static std::atomic<int> counter{0};
  auto now = std::chrono::system_clock::now().time_since_epoch().count();
  return "conformance:" + std::to_string(::getpid()) + ":" + std::to_string(counter++) + ":" +
         std::to_string(now) + ":";
}

std::shared_ptr<Backend> make(std::vector<std::string> locations, unsigned wait_replicas,
                              const Clock* clock) {
  RedisOptions options;
  options.locations = std::move(locations);
  options.key_namespace = unique_namespace();
  options.wait_replicas = wait_replicas;
  options.io_timeout = std::chrono::seconds(2);  // a loaded CI machine, not a fault test
  options.clock = clock;
  auto backend = make_redis_backend(options);
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  return *backend;
}

}  // namespace

void append_redis_conformance_cases(std::vector<BackendCase>& cases) {
  constexpr auto kSlack = std::chrono::milliseconds(1500);
  cases.push_back({"redis",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits) {
                     return make({required_env("CACHEKIT_TEST_REDIS_URL")}, 0, clock);
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false, kSlack,
                   /*needs_servers=*/true});
  // Replication is asynchronous: WAIT 1 after each write makes the replica's copy current
  // before the test reads it back there.
  cases.push_back({"redis_with_replica",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits) {
                     return make({required_env("CACHEKIT_TEST_REDIS_URL"),
                                  required_env("CACHEKIT_TEST_REDIS_REPLICA_URL")},
                                 1, clock);
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false, kSlack,
                   /*needs_servers=*/true});
  // The shared 3-primary + 3-replica cluster, every node given as a seed.
  cases.push_back({"redis_cluster",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits) {
                     std::vector<std::string> seeds;
                     std::string nodes = required_env("CACHEKIT_TEST_REDIS_CLUSTER");
                     for (std::size_t at = 0; at != std::string::npos;) {
                       auto comma = nodes.find(',', at);
                       seeds.push_back("redis://" + nodes.substr(at, comma - at));
                       at = comma == std::string::npos ? comma : comma + 1;
                     }
                     RedisOptions options;
                     options.locations = std::move(seeds);
                     options.key_namespace = unique_namespace();
                     options.io_timeout = std::chrono::seconds(2);
                     options.clock = clock;
                     auto backend = make_redis_cluster_backend(options);
                     if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
                     return *backend;
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false, kSlack,
                   /*needs_servers=*/true});
  // The primary found through three sentinels (a primary and a replica of its own, database 2).
  cases.push_back({"redis_sentinel",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits) {
                     return make({required_env("CACHEKIT_TEST_REDIS_SENTINEL")}, 0, clock);
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false, kSlack,
                   /*needs_servers=*/true});
}

}  // namespace cachekit::testing
