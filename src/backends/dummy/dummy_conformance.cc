// The dummy backend's case of the conformance suite (tests/conformance): it stores nothing, so
// the suite checks that every call answers as if the value had just been dropped.
#include <cachekit/backends/dummy.h>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

void append_dummy_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back({"dummy",
                   [](const Clock*, const std::filesystem::path&, BackendLimits) {
                     return make_dummy_backend();
                   },
                   /*stores=*/false, /*clock_controls_expiry=*/true, /*bounded=*/false});
}

}  // namespace cachekit::testing
