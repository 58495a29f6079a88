#pragma once
// The backends the conformance suite runs over. Each case builds a fresh, empty backend; a
// backend's known limits are declared with its case, next to its factory, never as `if`s in
// tests. Every backend defines its cases in its own folder, src/backends/<name>/
// <name>_conformance.cc, as append_<name>_conformance_cases(); the list of built-in backends
// (config/builtin_backends.h) gathers them, so adding a backend adds its cases.

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

#include "config/builtin_backends.h"

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
  // The case talks to a server process (the ones scripts/test-servers starts, or private ones
  // it starts itself): the suite lists it under Servers/, the others under Local/.
  bool needs_servers = false;
};

// Names the case in test listings (gtest would otherwise print the struct's bytes).
inline void PrintTo(const BackendCase& c, std::ostream* os) { *os << c.name; }

// Every built-in backend's cases, in the order of CACHEKIT_BUILTIN_BACKENDS.
std::vector<BackendCase> all_backend_cases();

#define CACHEKIT_DECLARE_CONFORMANCE_CASES(name) \
  void append_##name##_conformance_cases(std::vector<BackendCase>& cases);
CACHEKIT_BUILTIN_BACKENDS(CACHEKIT_DECLARE_CONFORMANCE_CASES)
#undef CACHEKIT_DECLARE_CONFORMANCE_CASES

}  // namespace cachekit::testing
