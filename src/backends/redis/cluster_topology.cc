// The Redis Cluster backend's slot map: which node serves which slot, fetched with CLUSTER
// SLOTS ([[first, last, [host, port, id], replica...], ...]; an empty host means "the node you
// asked", a node that does not know its own address), refreshed when a node fails or a slot
// moves, and one Pool per node, made on first sight.
#include <fmt/format.h>

#include <algorithm>

#include "backends/redis/cluster_backend.h"
#include "backends/redis/redis_backend.h"

namespace cachekit::redis_internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kMinRefreshInterval{100};

std::string_view text_of(const redisReply& reply) { return {reply.str, reply.len}; }

}  // namespace

std::vector<Pool*> ClusterTopology::primaries() const {
  std::vector<Pool*> out;
  for (const auto& shard : shards) {
    if (std::find(out.begin(), out.end(), shard.primary) == out.end()) out.push_back(shard.primary);
  }
  return out;
}

Pool* RedisClusterBackend::node(const std::string& host, int port) {
  std::string address = fmt::format("{}:{}", host, port);
  std::lock_guard lock(nodes_mutex_);
  auto& pool = nodes_[address];
  if (!pool) {
    Endpoint endpoint = seeds_.front();  // the credentials of the seeds
    endpoint.host = host;
    endpoint.port = port;
    pool = std::make_unique<Pool>(std::move(endpoint), pool_options_);
  }
  return pool.get();
}

Result<std::shared_ptr<const ClusterTopology>> RedisClusterBackend::fetch_topology(Pool& pool) {
  auto lease = pool.acquire();
  if (!lease.ok()) return lease.status();
  Connection& c = **lease;
  c.out().command({"CLUSTER", "SLOTS"});
  auto reply = round_trip(c);
  if (!reply.ok()) return reply.status();
  const redisReply& ranges = **reply;
  if (ranges.type != REDIS_REPLY_ARRAY) return unexpected_reply(c.where(), "CLUSTER SLOTS", ranges);
  auto topology = std::make_shared<ClusterTopology>();
  topology->shard_of.fill(-1);
  std::map<Pool*, std::int16_t> shard_index;  // a primary serving several ranges: one shard
  std::string asked_host = std::string(c.where().substr(0, c.where().rfind(':')));
  for (std::size_t i = 0; i < ranges.elements; ++i) {
    const redisReply& range = *ranges.element[i];
    if (range.type != REDIS_REPLY_ARRAY || range.elements < 3) {
      return unexpected_reply(c.where(), "CLUSTER SLOTS", range);
    }
    std::vector<Pool*> members;
    for (std::size_t m = 2; m < range.elements; ++m) {
      const redisReply& member = *range.element[m];
      if (member.type != REDIS_REPLY_ARRAY || member.elements < 2) continue;
      std::string host(text_of(*member.element[0]));
      if (host.empty() || host == "?") host = asked_host;
      members.push_back(node(host, static_cast<int>(member.element[1]->integer)));
    }
    if (members.empty()) continue;
    auto [at, fresh] =
        shard_index.emplace(members.front(), static_cast<std::int16_t>(topology->shards.size()));
    if (fresh) topology->shards.push_back({members.front(), {members.begin() + 1, members.end()}});
    auto first = std::clamp<long long>(range.element[0]->integer, 0, kClusterSlots - 1);
    auto last = std::clamp<long long>(range.element[1]->integer, 0, kClusterSlots - 1);
    for (auto slot = first; slot <= last; ++slot) topology->shard_of[slot] = at->second;
  }
  if (topology->shards.empty()) {
    return unavailable_error(
        fmt::format("redis cluster {}: CLUSTER SLOTS lists no slot", c.where()));
  }
  return std::shared_ptr<const ClusterTopology>(std::move(topology));
}

// Known nodes first (a seed may have left the cluster), then the seeds. A node that fails is
// skipped: its breaker makes a dead one cost microseconds.
Status RedisClusterBackend::refresh(bool first) {
  std::unique_lock lock(refresh_mutex_, std::defer_lock);
  if (first) {
    lock.lock();
    std::lock_guard guard(topology_mutex_);
    if (topology_) return {};  // another thread fetched it meanwhile
  } else if (!lock.try_lock()) {
    return {};  // another thread is refreshing; route on the current map meanwhile
  }
  auto now = Clock::now().time_since_epoch().count();
  if (!first && now - last_refresh_.load() < Clock::duration(kMinRefreshInterval).count()) {
    return {};
  }
  last_refresh_.store(now);
  stale_.store(false);
  std::vector<Pool*> candidates;
  {
    std::lock_guard guard(nodes_mutex_);
    for (auto& [address, pool] : nodes_) candidates.push_back(pool.get());
  }
  for (const auto& seed : seeds_) candidates.push_back(node(seed.host, seed.port));
  Status last = unavailable_error("redis cluster: no node to ask for the slot map");
  for (Pool* pool : candidates) {
    auto topology = fetch_topology(*pool);
    if (topology.ok()) {
      std::lock_guard guard(topology_mutex_);
      topology_ = std::move(topology).value();
      return {};
    }
    last = topology.status();
  }
  stale_.store(true);
  return last;
}

Result<std::shared_ptr<const ClusterTopology>> RedisClusterBackend::topology() {
  if (stale_.load(std::memory_order_relaxed)) (void)refresh(false);
  {
    std::lock_guard guard(topology_mutex_);
    if (topology_) return topology_;
  }
  if (Status s = refresh(true); !s.ok()) return s;
  std::lock_guard guard(topology_mutex_);
  return topology_;
}

Pool* RedisClusterBackend::replica_of(const ClusterTopology& topology, std::uint16_t slot) {
  auto index = topology.shard_of[slot];
  if (index < 0) return nullptr;
  const ClusterShard& shard = topology.shards[static_cast<std::size_t>(index)];
  if (shard.replicas.empty()) return nullptr;
  std::size_t n = next_replica_.fetch_add(1, std::memory_order_relaxed);
  return shard.replicas[n % shard.replicas.size()];
}

Pool* RedisClusterBackend::pick(const ClusterTopology& topology, std::uint16_t slot,
                                Access access) {
  auto index = topology.shard_of[slot];
  if (index < 0) return nullptr;
  if (access == Access::kRead && cluster_.read_from_replicas) {
    if (Pool* replica = replica_of(topology, slot)) return replica;
  }
  return topology.shards[static_cast<std::size_t>(index)].primary;
}

}  // namespace cachekit::redis_internal
