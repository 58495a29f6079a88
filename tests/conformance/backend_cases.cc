#include "conformance/backend_cases.h"

namespace cachekit::testing {

std::vector<BackendCase> all_backend_cases() {
  std::vector<BackendCase> cases;
#define CACHEKIT_APPEND_CONFORMANCE_CASES(name) append_##name##_conformance_cases(cases);
  CACHEKIT_BUILTIN_BACKENDS(CACHEKIT_APPEND_CONFORMANCE_CASES)
#undef CACHEKIT_APPEND_CONFORMANCE_CASES
  return cases;
}

}  // namespace cachekit::testing
