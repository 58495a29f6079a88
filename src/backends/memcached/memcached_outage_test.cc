// Memcached outages as they happen in production: the server is killed (-9), frozen
// (SIGSTOP) or shut down (SIGTERM) for 0.2 s, 5 s and 30 s, and comes back on the same port —
// killed and shut-down servers as new, empty processes. The scenarios run at once, each on
// its own memcached, so the whole binary takes about the longest outage.
//
// What must hold: no call during the outage throws or waits much longer than its timeouts;
// the same Cache stores and reads again within retry_after plus one probe after the server
// is back, also after outages during which the first retries found it still down.
#include <gtest/gtest.h>

#include "cachekit/backends/memcached.h"
#include "support/memcached_server.h"
#include "support/outage.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::OutagePlan;
using testing::OutageReport;

constexpr std::chrono::milliseconds kConnectTimeout = 200ms;
constexpr std::chrono::milliseconds kTimeout = 200ms;
constexpr std::chrono::milliseconds kPoolWait = 200ms;
constexpr std::chrono::seconds kRetryTimeout = 1s;  // the smallest memcached allows
constexpr std::chrono::milliseconds kSlack = 1000ms;

class MemcachedServer final : public testing::OutageServer {
 public:
  void kill() override { process_.kill(); }
  void freeze() override { testing::stop_and_wait(process_); }
  void thaw() override { process_.resume(); }
  void shutdown() override { process_.terminate(); }
  void restart() override { process_.restart(); }
  [[nodiscard]] const testing::ServerProcess& process() const { return process_; }

 private:
  testing::ServerProcess process_ = testing::start_memcached();
};

std::unique_ptr<Cache> cache_on(testing::OutageServer& server) {
  auto& memcached = static_cast<MemcachedServer&>(server);
  auto backend = make_memcached_backend({.servers = {testing::location_of(memcached.process())},
                                         .connect_timeout = kConnectTimeout,
                                         .io_timeout = kTimeout,
                                         .pool_wait = kPoolWait,
                                         .retry_after = kRetryTimeout});
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  return std::make_unique<Cache>(*backend, CacheOptions{.max_error_logs_per_second = 0});
}

TEST(MemcachedOutage, EveryFaultAndLengthFailsOpenAndRecoversWithTheSameBackend) {
  std::vector<testing::OutageScenario> scenarios;
  for (const OutagePlan& plan : testing::standard_plans()) {
    scenarios.push_back({plan, [] { return std::make_unique<MemcachedServer>(); }, cache_on});
  }
  const auto reports = testing::run_concurrently(scenarios, 15s);
  testing::print_reports(reports);
  for (const OutageReport& r : reports) {
    SCOPED_TRACE(r.name);
    ASSERT_EQ(r.setup_error, "");
    EXPECT_EQ(r.exceptions, 0);
    EXPECT_GT(r.calls_during, 0);
    EXPECT_LT(r.slowest_call, kConnectTimeout + kTimeout + kPoolWait + kSlack);
    EXPECT_TRUE(r.recovered) << r.last_error;
    EXPECT_LT(r.recovery, kRetryTimeout + kConnectTimeout + kTimeout + kSlack) << r.last_error;
  }
}

}  // namespace
}  // namespace cachekit
