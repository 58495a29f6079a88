#pragma once
// Outage scenarios for the cache-server fault tests: a server is killed (SIGKILL), frozen
// (SIGSTOP) or shut down cleanly for a while, then comes back on the same port (killed and
// shut-down servers as new, empty processes; a frozen one with SIGCONT). Meanwhile a client
// keeps calling the cache through the Cache façade; afterwards it measures how long the same
// Cache (the same backend object) takes to store and read a value again.
//
// Each scenario owns its server, so a test runs all of them at once in threads
// (run_concurrently), and the 30 s outages overlap instead of adding up.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cachekit/cache.h"

namespace cachekit::testing {

enum class Fault { kKill, kFreeze, kShutdown };
[[nodiscard]] std::string fault_name(Fault fault);

struct OutagePlan {
  Fault fault;
  std::chrono::milliseconds length;
  [[nodiscard]] std::string name() const;
};

// Every fault for 0.2 s, 5 s and 30 s.
[[nodiscard]] std::vector<OutagePlan> standard_plans();

// A server one scenario can break. Called from that scenario's thread only.
class OutageServer {
 public:
  virtual ~OutageServer() = default;
  virtual void kill() = 0;      // SIGKILL
  virtual void freeze() = 0;    // SIGSTOP (waited for)
  virtual void thaw() = 0;      // SIGCONT
  virtual void shutdown() = 0;  // clean shutdown, waited for
  virtual void restart() = 0;   // a new process on the same port, waited for until it listens
};

struct OutageReport {
  std::string name;
  std::string setup_error;                    // non-empty: the scenario could not run
  int calls_during = 0;                       // façade calls made during the outage
  int hits_during = 0;                        // gets that returned a value during it
  int exceptions = 0;                         // calls that threw (must be none)
  std::chrono::milliseconds slowest_call{0};  // during the outage
  bool recovered = false;                     // set + get worked again afterwards
  std::chrono::milliseconds recovery{0};      // from the server's return to that
  std::string last_error;                     // the last strict error while recovering
  std::vector<std::pair<std::string, std::string>> backend_stats;  // after recovery
  [[nodiscard]] std::string stat(std::string_view name) const;     // "" when missing
};

// One scenario: `make` builds the server and the Cache on it (run in the scenario's thread);
// the key "before" is stored first, then the fault lasts plan.length while calls go on; after
// the server's return, a strict set + get is retried every 10 ms for up to `give_up`.
struct OutageScenario {
  OutagePlan plan;
  std::function<std::unique_ptr<OutageServer>()> make_server;
  std::function<std::unique_ptr<Cache>(OutageServer&)> make_cache;
};
[[nodiscard]] OutageReport run_outage(const OutageScenario& scenario,
                                      std::chrono::milliseconds give_up);

// One line per report (calls, slowest call, recovery time), for the test's output.
void print_reports(const std::vector<OutageReport>& reports);

// Runs every scenario in a thread of its own; reports in the scenarios' order.
[[nodiscard]] std::vector<OutageReport> run_concurrently(
    const std::vector<OutageScenario>& scenarios, std::chrono::milliseconds give_up);

}  // namespace cachekit::testing
