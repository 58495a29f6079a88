// The locmem cases of the conformance suite (tests/conformance): one shard, and eight.
#include <cachekit/backends/locmem.h>

#include "conformance/backend_cases.h"

namespace cachekit::testing {

void append_locmem_conformance_cases(std::vector<BackendCase>& cases) {
  cases.push_back(
      {"locmem", [](const Clock* clock, const std::filesystem::path&, BackendLimits limits) {
         LocmemOptions o;
         o.max_entries = limits.max_entries;
         o.clock = clock;
         return make_locmem_backend(o);
       }});
  cases.push_back({"locmem_sharded",
                   [](const Clock* clock, const std::filesystem::path&, BackendLimits limits) {
                     LocmemOptions o;
                     o.max_entries = limits.max_entries;
                     o.shards = 8;
                     o.clock = clock;
                     return make_locmem_backend(o);
                   }});
}

}  // namespace cachekit::testing
