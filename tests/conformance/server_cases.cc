#include "conformance/backend_cases.h"

namespace cachekit::testing {

std::vector<BackendCase> server_backend_cases() {
  std::vector<BackendCase> cases;
  // Each server-backed store appends its cases here.
  return cases;
}

}  // namespace cachekit::testing
