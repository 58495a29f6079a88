#pragma once
// The Redis cases of the conformance suite (on the servers scripts/test-servers starts).

#include <vector>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

// Appends "redis" (the primary alone) and "redis_with_replica" (writes to the primary,
// reads from its replica).
void append_redis_cases(std::vector<BackendCase>& cases);

}  // namespace cachekit::testing
