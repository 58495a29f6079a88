// The memcached conformance case.
//
// Servers: two PRIVATE memcached processes per test process, started on first use and killed
// at exit, rather than the shared pair in CACHEKIT_TEST_MEMCACHED. Every case must start empty,
// and memcached can only be emptied with flush_all, which empties the whole server; ctest runs
// this suite's tests as separate processes two at a time (and memcached_test uses the shared
// pair), so flushing a shared server would wipe entries another running test has just written.
// A private pair per process is flushed by nobody else. They run with a 2 MB item limit because
// LargeValuesRoundTrip stores a 1 MiB value, which with its key and item header is just over
// memcached's default 1 MB limit; the default limit's behaviour (the failure and the removal of
// the old value) is tested in memcached_test against a default server.
//
// Expiry: the server keeps its own time in whole seconds, and the backend stores a timeout of x
// seconds as exptime ceil(x)+1 so that it never ends early (see src/backends/memcached/
// exptime.h): such an entry dies between ceil(x) and ceil(x)+1 seconds after it was written.
// The worst case in the suite is FractionalTimeoutsAreHonoured: 1.5 s (exptime 3, so up to 3 s
// of real life), with only pass_time(200 ms) of real time allowed before it must be gone; so
// every pass_time() sleeps 3.5 s longer (0.7 s of margin for a loaded machine). No "still alive"
// check minds: those entries have 10 s or more left.
#include <cachekit/backends/memcached.h>

#include <chrono>
#include <memory>
#include <stdexcept>

#include "conformance/backend_cases.h"
#include "support/memcached_server.h"

namespace cachekit::testing {
namespace {

struct PrivatePair {
  ServerProcess first = start_memcached({"-I", "2m"});
  ServerProcess second = start_memcached({"-I", "2m"});
};

const PrivatePair& servers() {
  static const PrivatePair pair;
  return pair;
}

std::shared_ptr<Backend> make(const Clock* clock) {
  MemcachedOptions options;
  options.servers = {location_of(servers().first), location_of(servers().second)};
  options.connect_timeout = std::chrono::seconds(2);  // a loaded CI machine, not a fault test
  options.io_timeout = std::chrono::seconds(2);
  options.clock = clock;
  auto backend = make_memcached_backend(options);
  if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
  if (Status s = (*backend)->clear(); !s.ok()) throw std::runtime_error(s.to_string());
  return *backend;
}

}  // namespace

void append_memcached_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back(
      {"memcached",
       [](const Clock* clock, const std::filesystem::path&, BackendLimits) { return make(clock); },
       /*stores=*/true, /*clock_controls_expiry=*/false, /*bounded=*/false,
       /*expiry_slack=*/std::chrono::milliseconds(3500), /*needs_servers=*/true});
}

}  // namespace cachekit::testing
