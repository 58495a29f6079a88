#pragma once
// The SQL cases of the conformance suite: SQLite on a temporary file, PostgreSQL on the server
// scripts/test-servers starts (CACHEKIT_TEST_POSTGRES_URL).

#include <vector>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

// Appends "sqlite" and "postgres".
void append_sql_cases(std::vector<BackendCase>& cases);

}  // namespace cachekit::testing
