// The client side of an outage: the calls an application makes, each timed, and the probe
// loop that measures recovery. The server side is the OutageServer each test provides.
#include "support/outage.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <thread>

namespace cachekit::testing {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

std::chrono::milliseconds since(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start);
}

// One façade call of several kinds, in turn; returns whether a get found a value.
bool one_call(Cache& cache, int i) {
  switch (i % 6) {
    case 0:
      return cache.get("before").has_value();
    case 1:
      (void)cache.set("during" + std::to_string(i), "v");
      return false;
    case 2:
      (void)cache.add("added", "v");
      return false;
    case 3:
      return !cache.get_many({"before", "other"}).empty();
    case 4:
      (void)cache.incr("counter", 1);
      return false;
    default:
      (void)cache.erase("gone");
      return false;
  }
}

// Calls the cache until `until`, pacing itself like a busy page (one call per 20 ms).
void call_during(Cache& cache, SteadyClock::time_point until, OutageReport& report) {
  for (int i = 0; SteadyClock::now() < until; ++i) {
    auto start = SteadyClock::now();
    try {
      if (one_call(cache, i)) ++report.hits_during;
    } catch (const std::exception&) {
      ++report.exceptions;
    }
    report.slowest_call = std::max(report.slowest_call, since(start));
    ++report.calls_during;
    std::this_thread::sleep_until(std::min(until, start + 20ms));
  }
}

void wait_for_recovery(Cache& cache, std::chrono::milliseconds give_up, OutageReport& report) {
  auto back = SteadyClock::now();
  while (since(back) < give_up) {
    Status stored = cache.strict().set("after", "again");
    auto got = stored.ok() ? cache.strict().get("after") : Result<std::optional<Bytes>>(stored);
    if (got.ok() && got->has_value() && (*got)->view() == "again") {
      report.recovered = true;
      report.recovery = since(back);
      return;
    }
    report.last_error = got.ok() ? "read back a miss" : got.status().to_string();
    std::this_thread::sleep_for(10ms);
  }
}

void break_server(OutageServer& server, Fault fault) {
  switch (fault) {
    case Fault::kKill:
      return server.kill();
    case Fault::kFreeze:
      return server.freeze();
    case Fault::kShutdown:
      return server.shutdown();
  }
}

}  // namespace

std::string fault_name(Fault fault) {
  switch (fault) {
    case Fault::kKill:
      return "kill";
    case Fault::kFreeze:
      return "freeze";
    case Fault::kShutdown:
      return "shutdown";
  }
  return "?";
}

std::string OutagePlan::name() const {
  return fault_name(fault) + " for " + std::to_string(length.count()) + " ms";
}

std::string OutageReport::stat(std::string_view name) const {
  for (const auto& [key, value] : backend_stats) {
    if (key == name) return value;
  }
  return "";
}

std::vector<OutagePlan> standard_plans() {
  std::vector<OutagePlan> plans;
  for (Fault fault : {Fault::kKill, Fault::kFreeze, Fault::kShutdown}) {
    for (std::chrono::milliseconds length : {200ms, 5000ms, 30000ms}) {
      plans.push_back({fault, length});
    }
  }
  return plans;
}

OutageReport run_outage(const OutageScenario& scenario, std::chrono::milliseconds give_up) {
  OutageReport report;
  report.name = scenario.plan.name();
  std::unique_ptr<OutageServer> server;
  std::unique_ptr<Cache> cache;
  try {
    server = scenario.make_server();
    cache = scenario.make_cache(*server);
  } catch (const std::exception& e) {
    report.setup_error = e.what();
    return report;
  }
  // Servers starting side by side on a busy machine may need a moment before the first call.
  Status first = cache->strict().set("before", "v");
  for (auto start = SteadyClock::now(); !first.ok() && since(start) < 15s;) {
    std::this_thread::sleep_for(50ms);
    first = cache->strict().set("before", "v");
  }
  if (!first.ok()) {
    report.setup_error = "the server did not work before the outage: " + first.to_string();
    return report;
  }
  break_server(*server, scenario.plan.fault);
  call_during(*cache, SteadyClock::now() + scenario.plan.length, report);
  if (scenario.plan.fault == Fault::kFreeze) {
    server->thaw();
  } else {
    server->restart();
  }
  wait_for_recovery(*cache, give_up, report);
  if (auto stats = cache->strict().backend_stats(); stats.ok()) {
    report.backend_stats.assign(stats->begin(), stats->end());
  }
  return report;
}

void print_reports(const std::vector<OutageReport>& reports) {
  for (const auto& r : reports) {
    std::printf("%-22s calls %4d  slowest %5lld ms  recovered %s in %5lld ms\n", r.name.c_str(),
                r.calls_during, static_cast<long long>(r.slowest_call.count()),
                r.recovered ? "yes" : "NO", static_cast<long long>(r.recovery.count()));
  }
  std::fflush(stdout);
}

std::vector<OutageReport> run_concurrently(const std::vector<OutageScenario>& scenarios,
                                           std::chrono::milliseconds give_up) {
  std::vector<OutageReport> reports(scenarios.size());
  std::vector<std::thread> threads;
  threads.reserve(scenarios.size());
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    threads.emplace_back([&, i] { reports[i] = run_outage(scenarios[i], give_up); });
  }
  for (auto& thread : threads) thread.join();
  return reports;
}

}  // namespace cachekit::testing
