#pragma once
// The memcached case of the conformance suite.

#include <vector>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

// Appends "memcached": two servers with ketama hashing, the way an application runs it.
void append_memcached_cases(std::vector<BackendCase>& cases);

}  // namespace cachekit::testing
