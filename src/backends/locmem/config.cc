// The "locmem" entry of the backend registry: BackendSpec (TOML or URL) → LocmemOptions.
#include <fmt/format.h>

#include <cstdint>
#include <limits>

#include "cachekit/backends/locmem.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"

namespace cachekit {
namespace {

constexpr std::int64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMaxUnsigned = std::numeric_limits<unsigned>::max();

// locmem's location is only a name (for logs and stats); which aliases share a store is
// decided by the registry, which hands equal settings the same backend object.
std::shared_ptr<Backend> make_locmem(const BackendSpec& spec) {
  spec.reject_unknown_options({"max_entries", "max_bytes", "cull_frequency", "shards"});
  if (spec.locations.size() > 1) {
    throw spec.error("location", fmt::format("the locmem backend takes one name, got {}",
                                             spec.locations.size()));
  }
  LocmemOptions options;
  if (!spec.locations.empty()) options.location = spec.locations.front();
  // Unset options keep LocmemOptions' defaults, written only there.
  options.max_entries =
      spec.integer_option("max_entries", 1, kMaxInt64).value_or(options.max_entries);
  options.max_bytes = spec.integer_option("max_bytes", 0, kMaxInt64).value_or(options.max_bytes);
  if (auto n = spec.integer_option("cull_frequency", 0, kMaxUnsigned)) {
    options.cull_frequency = static_cast<unsigned>(*n);
  }
  // 0 lets the backend choose; it rounds other counts up to a power of two.
  options.shards =
      static_cast<unsigned>(spec.integer_option("shards", 0, 1024).value_or(options.shards));
  options.clock = spec.clock;
  return make_locmem_backend(options);
}

}  // namespace

void register_locmem_backend(BackendRegistry& registry) { registry.add("locmem", make_locmem); }

}  // namespace cachekit
