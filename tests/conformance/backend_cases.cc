#include "conformance/backend_cases.h"

#include <cachekit/backends/dummy.h>
#include <cachekit/backends/file.h>
#include <cachekit/backends/locmem.h>

#include <stdexcept>

namespace cachekit::testing {

std::vector<BackendCase> local_backend_cases() {
  std::vector<BackendCase> cases;
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
  cases.push_back({"dummy",
                   [](const Clock*, const std::filesystem::path&, BackendLimits) {
                     return make_dummy_backend();
                   },
                   /*stores=*/false, /*clock_controls_expiry=*/true, /*bounded=*/false});
  return cases;
}

}  // namespace cachekit::testing
