// The SQL conformance cases. Both engines compare expiry with the backend's Clock (the time is
// a query parameter), so the suite's ManualClock controls expiry and nothing sleeps.
//
// ctest runs each test in its own process, two at a time, and other test binaries share the
// PostgreSQL server, so every PostgreSQL backend gets a table of its own, named from the pid,
// a counter and the time — and with a space and a double quote in it, so that every test of
// the suite also proves the table name is quoted everywhere. The tables are left behind: the
// test server is thrown away after the run.
#include <cachekit/backends/sql.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "conformance/backend_cases.h"
#include "support/sql_test_support.h"

namespace cachekit::testing {
namespace {

using ::cachekit::sql_testing::postgres_url;

std::string unique_table() {
  static std::atomic<int> counter{0};
  const auto now = std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'000;
  return "conf \"sql\" " + std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(now);
}

std::shared_ptr<Backend> with_table(Result<std::shared_ptr<Backend>> backend) {
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  auto created = create_cache_table(**backend, /*dry_run=*/false);
  if (!created.ok()) throw std::runtime_error(created.status().to_string());
  return *backend;
}

}  // namespace

void append_sql_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back({"sqlite", [](const Clock* clock, const std::filesystem::path& scratch,
                                BackendLimits limits) {
                     std::filesystem::create_directories(scratch);
                     SqliteOptions options;
                     options.path = scratch / "cache.db";
                     options.table = unique_table();
                     options.max_entries = limits.max_entries;
                     options.clock = clock;
                     return with_table(make_sqlite_backend(options));
                   }});
  cases.push_back({"postgres",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits limits) {
                     PostgresOptions options;
                     options.url = postgres_url();
                     options.table = unique_table();
                     options.max_entries = limits.max_entries;
                     options.call_timeout =
                         std::chrono::seconds(5);  // a loaded CI machine, not a fault test
                     options.clock = clock;
                     return with_table(make_postgres_backend(options));
                   },
                   /*stores=*/true, /*clock_controls_expiry=*/true, /*bounded=*/true,
                   /*expiry_slack=*/std::chrono::milliseconds(0), /*needs_servers=*/true});
}

}  // namespace cachekit::testing
