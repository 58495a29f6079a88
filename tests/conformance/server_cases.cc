#include "conformance/backend_cases.h"
#include "conformance/memcached_cases.h"
#include "conformance/redis_cases.h"
#include "conformance/sql_cases.h"

namespace cachekit::testing {

std::vector<BackendCase> server_backend_cases() {
  std::vector<BackendCase> cases;
  // Each server-backed store appends its cases here.
  append_redis_cases(cases);
  append_memcached_cases(cases);
  append_sql_cases(cases);
  return cases;
}

}  // namespace cachekit::testing
