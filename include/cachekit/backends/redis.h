#pragma once
// The Redis backend: a Backend on one Redis server, optionally with read replicas, through
// hiredis 0.14's synchronous API.
//
//   auto backend = cachekit::make_redis_backend({.locations = {"redis://127.0.0.1:6379/0"}});
//   cachekit::Cache cache(*backend, {.key_prefix = "shop"});
//
// Locations are URLs: redis://[[user]:password@]host[:port][/db] (port 6379, db 0 by
// default) or unix://[[user]:password@]/path/to/socket[?db=N]. rediss:// (TLS) is refused:
// hiredis 0.14 has no TLS, so reach a TLS-only server through a local tunnel. The first
// location is the primary and takes every write; the others are read replicas, and the
// reads (get, get_many, contains, ttl) go to them in turn, falling back to the primary when
// the chosen replica fails. With one location it serves everything.
//
// sentinel://[[user]:password@]host[:port][,host[:port]...]/<master-name>[/db][?replicas=true]
// (the only location when given) finds the primary through Redis Sentinel and follows its
// failovers: see docs/redis.md, "Sentinel".
//
// Each server gets one bounded connection pool owned by the backend object; every thread and
// every Cache sharing the backend (the configuration registry hands one backend to aliases
// with identical settings) shares it. Every call is bounded in time: waiting for a free
// connection (pool_wait), connecting (connect_timeout), each socket read or write
// (io_timeout). A connection that failed or timed out is closed and replaced on a later call, so
// service resumes by itself when a restarted server comes back. A circuit breaker stops a
// dead server from costing a timeout per call: a failed connect, or `down_after_failures`
// consecutive timeouts or I/O errors, marks the server down for `retry_after`; meanwhile
// calls fail at once with kUnavailable, then one call probes the server again.
//
// Errors: kUnavailable (refused, closed, marked down), kDeadlineExceeded (a timeout),
// kInvalidArgument (authentication refused), kFailedPrecondition (a key of another type, or
// incr on a non-integer), kOutOfRange (incr overflow), kResourceExhausted (server out of
// memory). The Cache façade turns them into misses and no-ops; StrictCache returns them.
//
// Values are stored as the bytes given — integers written by the Cache are decimal text, so
// `redis-cli INCR` and other clients interoperate. Expiry is sent as PX milliseconds, from
// the absolute Expiry and the backend's Clock. Thread-safety: every function here may be
// called from many threads at once.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/backend.h"
#include "cachekit/cache.h"
#include "cachekit/clock.h"

namespace cachekit {

struct RedisOptions {
  std::vector<std::string> locations{};  // primary first, then read replicas
  std::chrono::milliseconds connect_timeout{200};
  std::chrono::milliseconds io_timeout{200};    // each socket read or write
  std::size_t pool_size = 16;                   // connections per server
  std::chrono::milliseconds pool_wait{200};     // waiting for a free connection
  std::chrono::milliseconds retry_after{1000};  // how long a failing server is marked down
  unsigned down_after_failures = 3;             // consecutive timeouts/I/O errors that mark it down
  // Prepended to every key this backend sends, and stripped from keys() results: several
  // applications (or test runs) can share one database without seeing each other.
  std::string key_namespace{};
  // A glob over (un-namespaced) keys: clear() then removes only the matching keys, by SCAN
  // and UNLINK — e.g. "shop:*" for a cache whose key_prefix is "shop" (a configuration file's
  // key_prefix sets this for you). Empty: clear() removes the namespace's keys when
  // key_namespace is set, else FLUSHDB of the selected database (never FLUSHALL).
  std::string clear_scope{};
  // clear() runs FLUSHDB of the selected database whatever the scope: every key in that
  // database goes, including other applications' keys. Off unless asked for.
  bool clear_flushes_db = false;
  // After each write, wait for this many replicas to acknowledge it (WAIT, bounded by
  // wait_timeout, shorter than io_timeout) so that a read from a replica sees the write.
  // 0: do not wait.
  unsigned wait_replicas = 0;
  std::chrono::milliseconds wait_timeout{100};
  const Clock* clock = nullptr;  // nullptr: SystemClock; turns Expiry into PX milliseconds
};

// Connects lazily: a backend is returned even when the server is down (calls then fail with
// kUnavailable until it answers). Fails with kInvalidArgument naming the problem for a bad
// URL or option, e.g. `invalid Redis URL "redis://h:x": the port must be 1-65535, got "x"`.
[[nodiscard]] Result<std::shared_ptr<Backend>> make_redis_backend(RedisOptions options);

// Redis Cluster: the keys spread over several primaries by hash slot (CRC16 of the key mod
// 16384; only the part inside the first non-empty `{...}` counts, so "{user1}.a" and
// "{user1}.b" share a node). The RedisOptions' locations are seed nodes (redis://host:port,
// any of the cluster's nodes; more than one in case one is down): the backend asks them for
// the slot map (CLUSTER SLOTS) and keeps one pool, with its circuit breaker, per node. A
// command goes to the primary of its key's slot; -MOVED refreshes the map and follows,
// -ASK (a slot being migrated) is followed once, -TRYAGAIN/-CLUSTERDOWN are retried after
// a short pause, all within a few io_timeouts. A transport error marks the map stale; a read,
// set or erase is then sent once more if the map now names another node, incr never is. Batches
// are split by node, one pipeline per node. keys(), clear() and redis::erase_pattern visit
// every primary; redis::try_lock and redis::unlock refuse a cluster backend.
//
// Refused with kInvalidArgument: a database other than 0 ("Redis Cluster has only database
// 0": use key_namespace or a cache key_prefix to separate applications), unix:// seeds and
// wait_replicas. Errors as for make_redis_backend.
struct RedisClusterOptions {
  // Reads (get, get_many, contains, ttl) go to the slot's replicas in turn (READONLY), falling
  // back to the primary; a replica may lag the primary by a few milliseconds.
  bool read_from_replicas = false;
};
[[nodiscard]] Result<std::shared_ptr<Backend>> make_redis_cluster_backend(
    RedisOptions options, RedisClusterOptions cluster = {});

// Redis-only extras. Each takes a backend made by make_redis_backend (or a Cache on one) and
// fails with kInvalidArgument for any other backend; erase_pattern also takes a cluster backend.
namespace redis {

// Removes every key matching a glob pattern (within key_namespace) with SCAN (COUNT 1000)
// and pipelined UNLINK — never KEYS, which blocks the server. Returns how many were removed.
Result<std::size_t> erase_pattern(Backend& backend, std::string_view pattern);
// The same over a cache's keys: the pattern applies to caller keys of that cache's prefix
// and version (needs the default key function; kUnimplemented otherwise).
Result<std::size_t> erase_pattern(const Cache& cache, std::string_view pattern,
                                  Version version = {});

// A lock that expires by itself: SET key token NX PX ttl. Returns the token on success (pass
// it to unlock), nullopt when someone else holds the lock. Does not wait; poll to block.
Result<std::optional<std::string>> try_lock(Backend& backend, std::string_view key,
                                            std::chrono::milliseconds ttl);
// Releases the lock only if `token` still owns it (an atomic compare-and-delete script), so
// a holder whose lock expired cannot release its successor's. True if released.
Result<bool> unlock(Backend& backend, std::string_view key, std::string_view token);

}  // namespace redis
}  // namespace cachekit
