#pragma once
// The backends the conformance suite runs over. Each case builds a fresh, empty backend; a
// backend's known limits are declared here, next to its factory, never as `if`s in tests.
// Server-backed cases are added by the backends that need servers.

#include <cachekit/backend.h>
#include <cachekit/clock.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace cachekit::testing {

struct BackendLimits {
  std::size_t max_entries = 100'000;
};

struct BackendCase {
  std::string name;
  // Builds a fresh backend using `clock` for time and `scratch` as a private directory.
  std::function<std::shared_ptr<Backend>(const Clock* clock, const std::filesystem::path& scratch,
                                         BackendLimits limits)>
      make;
  // The store keeps what it is given (false only for dummy).
  bool stores = true;
  // Expiry follows the injected Clock. A server that keeps its own time sets this false: the
  // suite then lets real time pass where a test needs an entry to expire (timeouts are kept
  // to a second or two), plus `expiry_slack` for a store whose expiry has coarse resolution.
  bool clock_controls_expiry = true;
  // The store enforces max_entries.
  bool bounded = true;
  std::chrono::milliseconds expiry_slack{0};
};

// Names the case in test listings (gtest would otherwise print the struct's bytes).
inline void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

std::vector<BackendCase> local_backend_cases();
// Backends on the servers that scripts/test-servers starts (addresses from the environment).
std::vector<BackendCase> server_backend_cases();

}  // namespace cachekit::testing
