// Redis outages as they happen in production: the server is killed (-9), frozen (SIGSTOP) or
// shut down for 0.2 s, 5 s and 30 s, and comes back on the same port — killed and shut-down
// servers as new processes with no data. The scenarios run at once, each on its own
// redis-server, so the whole binary takes about the longest outage.
//
// What must hold: no call during the outage throws or waits much longer than its timeouts;
// the same Cache stores and reads again within retry_after plus one probe after the
// server is back, including after outages long enough that the breaker's first probes
// found the server still down.
#include <gtest/gtest.h>

#include "cachekit/backends/redis.h"
#include "support/outage.h"
#include "support/redis_test_support.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::Fault;
using testing::OutagePlan;
using testing::OutageReport;

constexpr auto kConnectTimeout = 200ms;
constexpr auto kTimeout = 200ms;
constexpr auto kPoolTimeout = 200ms;
constexpr auto kRetryInterval = 500ms;
constexpr auto kSlack = 1000ms;  // scheduling on a loaded 2-core machine, sanitizers

class RedisServer final : public testing::OutageServer {
 public:
  void kill() override { process_.kill(); }
  void freeze() override { process_.stop(); }
  void thaw() override { process_.resume(); }
  void shutdown() override { process_.terminate(); }  // SIGTERM: redis' clean shutdown
  void restart() override { process_.restart(); }
  [[nodiscard]] const testing::ServerProcess& process() const { return process_; }

 private:
  testing::ServerProcess process_ = testing::start_private_redis();
};

std::unique_ptr<Cache> cache_on(testing::OutageServer& server) {
  auto& redis = static_cast<RedisServer&>(server);
  auto backend = make_redis_backend({.locations = {testing::url_of(redis.process(), 2)},
                                     .connect_timeout = kConnectTimeout,
                                     .io_timeout = kTimeout,
                                     .pool_wait = kPoolTimeout,
                                     .retry_after = kRetryInterval});
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  return std::make_unique<Cache>(*backend, CacheOptions{.max_error_logs_per_second = 0});
}

TEST(RedisOutage, EveryFaultAndLengthFailsOpenAndRecoversWithTheSameBackend) {
  std::vector<testing::OutageScenario> scenarios;
  for (const OutagePlan& plan : testing::standard_plans()) {
    scenarios.push_back({plan, [] { return std::make_unique<RedisServer>(); }, cache_on});
  }
  const auto reports = testing::run_concurrently(scenarios, 15s);
  testing::print_reports(reports);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const OutageReport& r = reports[i];
    SCOPED_TRACE(r.name);
    ASSERT_EQ(r.setup_error, "");
    EXPECT_EQ(r.exceptions, 0);
    EXPECT_GT(r.calls_during, 0);
    EXPECT_LT(r.slowest_call, kConnectTimeout + kTimeout + kPoolTimeout + kSlack);
    EXPECT_TRUE(r.recovered) << r.last_error;
    EXPECT_LT(r.recovery, kRetryInterval + kConnectTimeout + kTimeout + kSlack) << r.last_error;
    EXPECT_EQ(r.stat("pool.down"), "false");
    if (scenarios[i].plan.length >= 5s) {
      // The breaker tripped again after a probe that found the server still down.
      EXPECT_GE(std::stoi("0" + r.stat("pool.trips")), 2) << "no failed probe";
    }
  }
}

}  // namespace
}  // namespace cachekit
