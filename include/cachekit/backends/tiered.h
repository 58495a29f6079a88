#pragma once
// The two-tier backend ("tiered"): a bounded in-process locmem tier in front of a shared
// backend (Redis, memcached, SQL, file). A hit in the local tier costs no round trip.
//
//   auto redis = cachekit::make_redis_backend({.locations = {"redis://127.0.0.1:6379/2"}});
//   auto both = cachekit::make_tiered_backend({.shared = *redis, .local = {.max_entries = 10000}});
//
// Reads try the local tier, then the shared one, and copy what the shared one returns into
// the local tier with the shared entry's remaining lifetime (never longer than local_ttl).
// Every write (set, add, touch, erase, incr, set_many, erase_many, clear) goes to the shared
// backend and then drops the local copies it touched; ttl() and keys() ask the shared one.
// get_many serves the keys found locally and asks the shared backend for the rest in one
// batch, without copying them into the local tier (the batch has no lifetimes).
//
// Coherence — what stops a process from serving its local copy after another process, or
// any other client, changed the shared entry:
//  - kChanges: the shared backend's change feed (Backend::watch_changes; Redis: CLIENT
//    TRACKING in broadcast mode) drops a local copy as soon as any client writes, erases,
//    expires or evicts the key, or flushes the database. While the feed is down (its
//    connection lost, the server restarting) the local tier is emptied and bypassed: reads
//    go to the shared backend and nothing is copied, until the feed is back.
//  - kTtl: a local copy lives at most local_ttl; a change by another client is seen after
//    at most that long. Within one process every write drops the local copy at once.
//  - kAuto (the default): kChanges when the shared backend has a change feed, else kTtl.
// A copy being filled while its key changes is dropped, not kept: the fill and the change
// are ordered through per-key-stripe counters, so a slow reader never re-inserts an old value
// after the invalidation for it has been applied.
//
// stats(): the local tier's hits, the shared tier's hits and misses, the invalidations
// applied, the fills dropped, whether the feed is live, then the shared backend's own lines
// prefixed "shared.". Thread-safe.

#include <chrono>
#include <memory>
#include <optional>

#include "cachekit/backend.h"
#include "cachekit/backends/locmem.h"

namespace cachekit {

enum class TierCoherence : std::uint8_t { kAuto, kChanges, kTtl };

struct TieredOptions {
  std::shared_ptr<Backend> shared{};  // required
  LocmemOptions local{.max_entries = 10'000};
  TierCoherence coherence = TierCoherence::kAuto;
  // The longest a local copy lives. Unset: 1 s with kTtl, 5 min with kChanges (a bound on
  // the damage of an invalidation lost in a way the feed could not notice).
  std::optional<std::chrono::milliseconds> local_ttl{};
};

// kInvalidArgument without a shared backend or with a local_ttl that is not positive;
// kUnimplemented for kChanges over a backend without a change feed.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_tiered_backend(TieredOptions options);

}  // namespace cachekit
