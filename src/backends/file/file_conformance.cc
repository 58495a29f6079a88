// The file backend's case of the conformance suite (tests/conformance), in the test's scratch
// directory.
#include <cachekit/backends/file.h>

#include <stdexcept>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

void append_file_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back(
      {"file", [](const Clock* clock, const std::filesystem::path& scratch, BackendLimits limits) {
         FileOptions o;
         o.directory = scratch / "file-cache";
         o.max_entries = limits.max_entries;
         o.clock = clock;
         auto backend = make_file_backend(o);
         if (!backend.ok()) throw std::runtime_error(backend.status().to_string());
         return *backend;
       }});
}

}  // namespace cachekit::testing
