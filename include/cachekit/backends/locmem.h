#pragma once
// The in-process memory backend ("locmem"): cachekit's embedded default.
//
// Thread-safe and sharded: a key's shard is chosen by its hash, each shard has its own
// lock, so threads working on different shards never wait for each other. Bounded by
// max_entries (and optionally max_bytes); eviction is least-recently-used within a shard
// (get, set, add and incr count as uses). A cache small enough to have one shard is
// therefore exactly LRU. Each backend instance owns its own store: two caches share data
// only when they share the backend object.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "cachekit/backend.h"
#include "cachekit/clock.h"

namespace cachekit {

struct LocmemOptions {
  std::string location{};         // a name for logs and stats only
  std::size_t max_entries = 300;  // as Django's MAX_ENTRIES
  std::size_t max_bytes = 0;      // 0: no byte bound (keys + values)
  // Unset: evict exactly enough least-recently-used entries to stay within bounds.
  // N > 0: when full, evict 1/N of the shard's entries (Django's CULL_FREQUENCY);
  // 0: empty the whole cache when full.
  std::optional<unsigned> cull_frequency{};
  unsigned shards = 0;           // 0: chosen from max_entries (a power of two, 1..64)
  const Clock* clock = nullptr;  // nullptr: SystemClock
};

[[nodiscard]] std::shared_ptr<Backend> make_locmem_backend(const LocmemOptions& options = {});

}  // namespace cachekit
