// PostgreSQL outages as they happen in production: the server is killed (-9, every process of
// the cluster), frozen (SIGSTOP) or shut down (fast shutdown) for 0.2 s, 5 s and 30 s, and
// then restarted on the same port (a frozen one resumed). Each scenario owns a private cluster
// (tests/support/postgres_server.h) and they all run at once, so the binary takes about the
// longest outage plus the clusters' initdb.
//
// What must hold: no call during the outage throws or waits much longer than the timeout;
// the same Cache works again shortly after the server is back: within the circuit breaker's
// retry interval plus one probe call (the pool reconnects on demand).
#include <gtest/gtest.h>

#include "cachekit/backends/sql.h"
#include "support/outage.h"
#include "support/postgres_server.h"
#include "support/sql_test_support.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::OutagePlan;
using testing::OutageReport;

constexpr std::chrono::milliseconds kTimeout = 500ms;
constexpr std::chrono::milliseconds kConnectTimeout = 200ms;
constexpr std::chrono::milliseconds kSlack = 1000ms;
constexpr std::chrono::milliseconds kRetryInterval = 1000ms;  // the breaker's default

class PostgresOutageServer final : public testing::OutageServer {
 public:
  void kill() override { server_.kill(); }
  void freeze() override { server_.pause(); }
  void thaw() override { server_.resume(); }
  void shutdown() override { server_.shutdown(); }
  void restart() override { server_.restart(); }
  [[nodiscard]] const std::string& url() const { return server_.url(); }

 private:
  testing::PostgresServer server_ = testing::PostgresServer::start();
};

std::unique_ptr<Cache> cache_on(testing::OutageServer& server) {
  PostgresOptions options;
  options.url = static_cast<PostgresOutageServer&>(server).url();
  options.table = sql_testing::unique_table("outage");
  options.pool_size = 4;
  {  // created with the default, generous timeouts: nine clusters start side by side
    auto setup = make_postgres_backend(options);
    if (!setup.ok()) throw std::runtime_error(setup.status().to_string());
    auto created = create_cache_table(**setup, false);
    if (!created.ok()) throw std::runtime_error(created.status().to_string());
  }
  options.call_timeout = kTimeout;
  options.connect_timeout = kConnectTimeout;
  auto backend = make_postgres_backend(options);
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  return std::make_unique<Cache>(*backend, CacheOptions{.max_error_logs_per_second = 0});
}

TEST(PostgresOutage, EveryFaultAndLengthFailsOpenAndRecoversWithTheSameBackend) {
  std::vector<testing::OutageScenario> scenarios;
  for (const OutagePlan& plan : testing::standard_plans()) {
    scenarios.push_back({plan, [] { return std::make_unique<PostgresOutageServer>(); }, cache_on});
  }
  const auto reports = testing::run_concurrently(scenarios, 15s);
  testing::print_reports(reports);
  for (const OutageReport& r : reports) {
    SCOPED_TRACE(r.name);
    ASSERT_EQ(r.setup_error, "");
    EXPECT_EQ(r.exceptions, 0);
    EXPECT_GT(r.calls_during, 0);
    EXPECT_LT(r.slowest_call, kTimeout + kSlack);
    EXPECT_TRUE(r.recovered) << r.last_error;
    // While the server is marked down only one probe per retry interval tries to connect, so a
    // long freeze leaves a few connection attempts in the listen backlog, not one per call
    // (about 150 in 30 s, which kept a thawed postmaster busy for 2-5 s).
    EXPECT_LT(r.recovery, kRetryInterval + kTimeout + kSlack) << r.last_error;
  }
}

}  // namespace
}  // namespace cachekit
