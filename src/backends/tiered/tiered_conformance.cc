// The tiered conformance case: a locmem tier over the shared Redis test server, kept coherent
// by Redis' change feed. Redis keeps real time while the suite's clock is a ManualClock, so
// the case declares what the Redis cases do (redis_conformance.cc explains the slack), and a
// local copy lives at most 500 ms of the suite's clock: a copy filled after the clock was
// moved ahead of real time cannot outlive its Redis entry by more than that.
#include <cachekit/backends/redis.h>
#include <cachekit/backends/tiered.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

void append_tiered_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back({"tiered",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits) {
                     const char* url = std::getenv("CACHEKIT_TEST_REDIS_URL");
                     if (url == nullptr || *url == '\0') {
                       throw std::runtime_error(
                           "CACHEKIT_TEST_REDIS_URL is not set: run the tests with `make test`");
                     }
                     static std::atomic<int> counter{0};
                     auto redis = make_redis_backend(
                         {.locations = {url},
                          .io_timeout = std::chrono::seconds(2),
                          .key_namespace = "conformance-tiered:" + std::to_string(::getpid()) +
                                           ":" + std::to_string(counter++) + ":",
                          .clock = clock});
                     if (!redis.ok()) throw std::runtime_error(redis.status().to_string());
                     auto tiered =
                         make_tiered_backend({.shared = *redis,
                                              .local = {.max_entries = 1000, .clock = clock},
                                              .coherence = TierCoherence::kChanges,
                                              .local_ttl = std::chrono::milliseconds(500)});
                     if (!tiered.ok()) throw std::runtime_error(tiered.status().to_string());
                     return *tiered;
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false,
                   std::chrono::milliseconds(1500), /*needs_servers=*/true});
}

}  // namespace cachekit::testing
