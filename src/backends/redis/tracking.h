#pragma once
// The Redis change feed behind RedisBackend::watch_changes: server-assisted client-side
// caching (CLIENT TRACKING, Redis >= 6) over RESP2. Internal to the Redis backend.
//
// One connection of its own, on its own thread: CLIENT ID, then CLIENT TRACKING ON
// REDIRECT <its own id> BCAST [PREFIX <key_namespace>], then SUBSCRIBE __redis__:invalidate.
// Broadcast mode reports every change under the prefix by any client (another process,
// redis-cli, an expiry, an eviction) without the server remembering which keys were read, so
// the pooled data connections need no tracking state and a reconnect needs no replay. A null
// payload (FLUSHDB, FLUSHALL) is "everything changed". The feed PINGs while idle; a lost or
// silent connection is reported as not live (changes may have been missed) and reopened,
// every `retry` until it comes back.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "backends/redis/connection.h"
#include "backends/redis/url.h"
#include "cachekit/backend.h"

namespace cachekit::redis_internal {

struct TrackingOptions {
  Endpoint endpoint;            // the primary: every write goes there
  Timeouts timeouts{};          // connect and each read/write
  std::string key_namespace{};  // the broadcast prefix, stripped from reported keys
  std::chrono::milliseconds ping_every{1000};
  std::chrono::milliseconds retry{500};
  // A primary that moves (Sentinel): asked before each connection instead of `endpoint`
  // (nullopt: none known yet, try again later), and every `recheck` while connected; when it
  // names another server the connection ends — the feed is not live, so local copies go —
  // and the next one watches the new primary. Called on the feed's thread.
  std::function<std::optional<Endpoint>()> find_primary{};
  std::chrono::milliseconds recheck{100};
};

// Starts the feed's thread; listener.feed_live(false) has been called when this returns.
Result<std::unique_ptr<ChangeFeed>> start_tracking(TrackingOptions options,
                                                   ChangeListener& listener);

}  // namespace cachekit::redis_internal
