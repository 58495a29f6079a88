#pragma once
// The Redis Cluster backend class, shared by its files (cluster.cc: routing and the key
// operations; cluster_topology.cc: the slot map and the node pools; cluster_keyspace.cc:
// batches, keys, clear, stats). Users see only
// include/cachekit/backends/redis.h (make_redis_cluster_backend).
//
// One Pool per node (the single-server backend's Pool, with its circuit breaker), created as
// CLUSTER SLOTS names the node and never destroyed, so a Pool* stays valid for the backend's
// life. The slot map is an immutable ClusterTopology replaced as a whole on refresh: readers
// copy a shared_ptr under a mutex and route without holding it.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/redis/connection.h"
#include "backends/redis/pool.h"
#include "backends/redis/slots.h"
#include "cachekit/backend.h"
#include "cachekit/backends/redis.h"

namespace cachekit::redis_internal {

// A primary and its replicas, serving one or more slot ranges.
struct ClusterShard {
  Pool* primary = nullptr;
  std::vector<Pool*> replicas;
};

struct ClusterTopology {
  std::vector<ClusterShard> shards;
  std::array<std::int16_t, kClusterSlots> shard_of{};  // index into shards; -1: not served
  // Every primary once, in shard order.
  [[nodiscard]] std::vector<Pool*> primaries() const;
};

// Whether a command reads (and may go to a replica) or writes.
enum class Access : std::uint8_t { kRead, kWrite };
// Whether a command may be sent again after a transport error (it may have run: incr may not).
enum class Retry : std::uint8_t { kIdempotent, kOnlyIfNotRun };

// The error replies that send a command elsewhere or later.
struct Redirect {
  enum Kind : std::uint8_t { kNone, kMoved, kAsk, kTryAgain } kind = kNone;
  std::string host;
  int port = 0;
};
[[nodiscard]] Redirect redirect_of(const redisReply& reply);

class RedisClusterBackend final : public Backend {
 public:
  static Result<std::shared_ptr<RedisClusterBackend>> make(RedisOptions options,
                                                           RedisClusterOptions cluster);

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  Result<bool> erase_if_value(std::string_view key, std::string_view expected) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<bool> contains(std::string_view key) override;
  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override;
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items,
                                            Expiry expiry) override;
  Result<std::size_t> erase_many(std::span<const std::string_view> keys) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;

  // Removes the keys matching `pattern` (within key_namespace) on every primary.
  Result<std::size_t> erase_pattern(std::string_view pattern);

 private:
  RedisClusterBackend(RedisOptions options, RedisClusterOptions cluster,
                      std::vector<Endpoint> seeds);

  // The current slot map, fetched first (or again, when a node failed) if need be.
  Result<std::shared_ptr<const ClusterTopology>> topology();
  // Asks the known nodes, then the seeds, for CLUSTER SLOTS and installs the answer. At most
  // one refresh runs at a time and at most one per kMinRefreshInterval unless `first`.
  Status refresh(bool first);
  Result<std::shared_ptr<const ClusterTopology>> fetch_topology(Pool& pool);
  // The pool of a node, made on first sight.
  Pool* node(const std::string& host, int port);
  // The pool to send a command for `slot` to; nullptr when no node serves the slot.
  Pool* pick(const ClusterTopology& topology, std::uint16_t slot, Access access);
  // One of the replicas of the slot's primary, in turn; nullptr when it has none.
  Pool* replica_of(const ClusterTopology& topology, std::uint16_t slot);
  // Marks the slot map as needing a refresh before the next call (a node failed or moved).
  void mark_stale() noexcept { stale_.store(true, std::memory_order_relaxed); }

  // Sends `commands` commands for one key, built by `build(CommandBuffer&)`, to the node that
  // serves `slot`, following MOVED/ASK/TRYAGAIN/CLUSTERDOWN within the call's time budget.
  // The replies (error replies included) in order.
  template <class Build>
  Result<std::vector<Reply>> routed(std::uint16_t slot, Access access, Retry retry,
                                    std::size_t commands, Build&& build);
  template <class Build>
  Result<Reply> routed_one(std::string_view key, Access access, Retry retry, Build&& build);

  // Sends one single-key command per item, grouped by the node that serves its slot: one
  // pipeline per node, all sent before any is read, so the nodes work at the same time.
  // `build(out, i)` writes item i's command, `take(i, reply)` consumes its reply. Returns the
  // items answered with a redirect (or whose slot no node serves), for the caller to send
  // one by one through routed().
  template <class KeyOf, class Build, class Take>
  Result<std::vector<std::size_t>> scatter(std::size_t count, Access access, KeyOf&& key_of,
                                           Build&& build, Take&& take);
  // Every primary's connection in turn, for keys / clear / stats.
  template <class F>
  Status on_each_primary(F&& exchange);
  // SCAN over `glob` on one node with pipelined single-key UNLINKs: keys of one node still
  // live in different slots, and a multi-key UNLINK would be refused as CROSSSLOT.
  Result<std::size_t> scan_and_unlink(Connection& connection, std::string_view glob);
  [[nodiscard]] std::string namespaced_glob(std::string_view pattern) const;
  [[nodiscard]] Ttl lifetime(Expiry expiry) const;

  RedisOptions options_;
  RedisClusterOptions cluster_;
  const Clock* clock_;
  BackendInfo info_;
  PoolOptions pool_options_;
  std::vector<Endpoint> seeds_;

  std::mutex nodes_mutex_;
  std::map<std::string, std::unique_ptr<Pool>> nodes_;  // "host:port" → pool; never erased

  std::mutex topology_mutex_;
  std::shared_ptr<const ClusterTopology> topology_;  // null until the first refresh
  std::mutex refresh_mutex_;
  std::atomic<bool> stale_{false};
  std::atomic<std::int64_t> last_refresh_{0};  // steady_clock ticks
  std::atomic<std::size_t> next_replica_{0};
};

}  // namespace cachekit::redis_internal
