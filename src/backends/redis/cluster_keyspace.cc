// The Redis Cluster backend's batches, whole-keyspace operations and stats.
//
// Batches: one pipeline of single-key commands per node rather than one MGET per slot. With
// 100 keys over 16384 slots nearly every key has a slot of its own, so a per-slot MGET would
// be a pipeline of one-key MGETs anyway; GETs pipelined per node cost one write and one read
// pass per node whatever the spread, and a redirect answers for one key, not for a whole MGET.
// The pipelines of all nodes are written before any is read, so the nodes work in parallel.
//
// keys, clear and erase_pattern SCAN every primary (a replica holds the same keys) and
// UNLINK key by key, pipelined: the keys of one node still live in different slots, and a
// multi-key UNLINK would be refused with CROSSSLOT.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "backends/redis/cluster_backend.h"
#include "backends/redis/redis_backend.h"

namespace cachekit::redis_internal {
namespace {

constexpr std::string_view kScanCount = "1000";

void scan_command(CommandBuffer& out, std::string_view cursor, std::string_view glob) {
  out.command({"SCAN", cursor, "MATCH", glob, "COUNT", kScanCount});
}

// A SCAN reply's next cursor and keys, checked.
Result<const redisReply*> scan_keys(Connection& c, const Reply& reply, std::string& cursor) {
  const redisReply& r = *reply;
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[0]->type != REDIS_REPLY_STRING ||
      r.element[1]->type != REDIS_REPLY_ARRAY) {
    return unexpected_reply(c.where(), "SCAN", r);
  }
  cursor.assign(r.element[0]->str, r.element[0]->len);
  return r.element[1];
}

std::string_view text_of(const redisReply& reply) { return {reply.str, reply.len}; }

}  // namespace

template <class KeyOf, class Build, class Take>
Result<std::vector<std::size_t>> RedisClusterBackend::scatter(std::size_t count, Access access,
                                                              KeyOf&& key_of, Build&& build,
                                                              Take&& take) {
  struct Group {
    Pool* pool;
    std::vector<std::size_t> items;
    std::optional<Pool::Lease> lease;
  };
  auto map = topology();
  if (!map.ok()) return map.status();
  std::vector<std::size_t> redo;
  std::vector<Group> groups;
  for (std::size_t i = 0; i < count; ++i) {
    Pool* pool = pick(**map, key_slot(options_.key_namespace, key_of(i)), access);
    if (pool == nullptr) {
      redo.push_back(i);
      continue;
    }
    auto group =
        std::find_if(groups.begin(), groups.end(), [&](auto& g) { return g.pool == pool; });
    if (group != groups.end()) {
      group->items.push_back(i);
    } else {
      groups.push_back(Group{pool, {i}, std::nullopt});
    }
  }
  const bool readonly = access == Access::kRead && cluster_.read_from_replicas;
  for (auto& group : groups) {
    auto lease = group.pool->acquire();
    if (!lease.ok()) return mark_stale(), lease.status();
    Connection& c = *group.lease.emplace(std::move(lease).value());
    if (readonly) c.out().command({"READONLY"});  // harmless on a primary
    for (std::size_t i : group.items) build(c.out(), i);
    if (Status s = c.send(); !s.ok()) return mark_stale(), s;
  }
  for (auto& group : groups) {
    Connection& c = **group.lease;
    if (readonly) {
      if (auto reply = c.read(); !reply.ok()) return mark_stale(), reply.status();
    }
    for (std::size_t i : group.items) {
      auto reply = c.read();
      if (!reply.ok()) return mark_stale(), reply.status();
      Redirect redirect = redirect_of(**reply);
      if (redirect.kind == Redirect::kNone) {
        take(i, **reply);
        continue;
      }
      if (redirect.kind != Redirect::kAsk) mark_stale();
      redo.push_back(i);
    }
  }
  return redo;
}

// ---- batches ----

Result<std::vector<std::optional<Bytes>>> RedisClusterBackend::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<Bytes>> values(keys.size());
  Status bad;
  auto redo = scatter(
      keys.size(), Access::kRead, [&](std::size_t i) { return keys[i]; },
      [&](CommandBuffer& out, std::size_t i) {
        out.begin(2);
        out.arg("GET");
        out.arg(options_.key_namespace, keys[i]);
      },
      [&](std::size_t i, const redisReply& reply) {
        if (reply.type == REDIS_REPLY_STRING) {
          values[i].emplace(Bytes(text_of(reply)));
        } else if (reply.type != REDIS_REPLY_NIL && bad.ok()) {
          bad = unexpected_reply("cluster", "GET", reply);
        }
      });
  if (!redo.ok()) return redo.status();
  if (!bad.ok()) return bad;
  for (std::size_t i : *redo) {
    auto value = get(keys[i]);
    if (!value.ok()) return value.status();
    values[i] = std::move(value).value();
  }
  return values;
}

Result<std::vector<std::size_t>> RedisClusterBackend::set_many(std::span<const KeyValue> items,
                                                               Expiry expiry) {
  using Failed = std::vector<std::size_t>;
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) {
    std::vector<std::string_view> keys;
    for (const auto& item : items) keys.push_back(item.key);
    auto erased = erase_many(keys);
    if (!erased.ok()) return erased.status();
    return Failed{};
  }
  Failed failed;
  auto redo = scatter(
      items.size(), Access::kWrite, [&](std::size_t i) { return items[i].key; },
      [&](CommandBuffer& out, std::size_t i) {
        std::size_t args = left.expires() ? 5 : 3;
        out.begin(args);
        out.arg("SET");
        out.arg(options_.key_namespace, items[i].key);
        out.arg(items[i].value);
        if (left.expires()) {
          out.arg("PX");
          out.arg(static_cast<std::int64_t>(left.remaining().count()));
        }
      },
      [&](std::size_t i, const redisReply& reply) {
        if (reply.type == REDIS_REPLY_ERROR) failed.push_back(i);
      });
  if (!redo.ok()) return redo.status();
  for (std::size_t i : *redo) {
    if (!set(items[i].key, items[i].value, expiry).ok()) failed.push_back(i);
  }
  std::sort(failed.begin(), failed.end());
  return failed;
}

Result<std::size_t> RedisClusterBackend::erase_many(std::span<const std::string_view> keys) {
  std::size_t removed = 0;
  auto redo = scatter(
      keys.size(), Access::kWrite, [&](std::size_t i) { return keys[i]; },
      [&](CommandBuffer& out, std::size_t i) {
        out.begin(2);
        out.arg("UNLINK");
        out.arg(options_.key_namespace, keys[i]);
      },
      [&](std::size_t, const redisReply& reply) {
        if (reply.type == REDIS_REPLY_INTEGER && reply.integer > 0) ++removed;
      });
  if (!redo.ok()) return redo.status();
  for (std::size_t i : *redo) {
    auto erased = erase(keys[i]);
    if (!erased.ok()) return erased.status();
    removed += *erased ? 1 : 0;
  }
  return removed;
}

// ---- every primary ----

template <class F>
Status RedisClusterBackend::on_each_primary(F&& exchange) {
  auto map = topology();
  if (!map.ok()) return map.status();
  for (Pool* pool : (*map)->primaries()) {
    auto lease = pool->acquire();
    if (!lease.ok()) return mark_stale(), lease.status();
    if (Status s = exchange(**lease); !s.ok()) return mark_stale(), s;
  }
  return {};
}

std::string RedisClusterBackend::namespaced_glob(std::string_view pattern) const {
  return escape_glob(options_.key_namespace) + std::string(pattern);
}

Result<std::vector<std::string>> RedisClusterBackend::keys(std::string_view pattern) {
  std::string glob = namespaced_glob(pattern);
  std::vector<std::string> out;
  Status s = on_each_primary([&](Connection& c) -> Status {
    std::string cursor = "0";
    do {
      scan_command(c.out(), cursor, glob);
      auto reply = round_trip(c);
      if (!reply.ok()) return reply.status();
      auto keys = scan_keys(c, *reply, cursor);
      if (!keys.ok()) return keys.status();
      for (std::size_t i = 0; i < (*keys)->elements; ++i) {
        out.emplace_back(text_of(*(*keys)->element[i]).substr(options_.key_namespace.size()));
      }
    } while (cursor != "0");
    return {};
  });
  if (!s.ok()) return s;
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// One SCAN page, then its keys' UNLINKs in one pipeline, until the cursor comes back to 0. A
// key being migrated answers ASK or MOVED and is left to the node that owns it now (which the
// same clear() visits too).
Result<std::size_t> RedisClusterBackend::scan_and_unlink(Connection& c, std::string_view glob) {
  std::size_t removed = 0;
  std::string cursor = "0";
  do {
    scan_command(c.out(), cursor, glob);
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    auto keys = scan_keys(c, *reply, cursor);
    if (!keys.ok()) return keys.status();
    if ((*keys)->elements == 0) continue;
    for (std::size_t i = 0; i < (*keys)->elements; ++i) {
      c.out().begin(2);
      c.out().arg("UNLINK");
      c.out().arg(text_of(*(*keys)->element[i]));
    }
    if (Status s = c.send(); !s.ok()) return s;
    for (std::size_t i = 0; i < (*keys)->elements; ++i) {
      auto unlinked = c.read();
      if (!unlinked.ok()) return unlinked.status();
      if ((*unlinked)->type == REDIS_REPLY_INTEGER && (*unlinked)->integer > 0) ++removed;
    }
  } while (cursor != "0");
  return removed;
}

Result<std::size_t> RedisClusterBackend::erase_pattern(std::string_view pattern) {
  std::string glob = namespaced_glob(pattern);
  std::size_t removed = 0;
  Status s = on_each_primary([&](Connection& c) -> Status {
    auto n = scan_and_unlink(c, glob);
    if (!n.ok()) return n.status();
    removed += *n;
    return {};
  });
  if (!s.ok()) return s;
  return removed;
}

// The same scopes as the single-server backend (keyspace.cc), on every primary: a cache's
// prefix or namespace removes only its keys; otherwise FLUSHDB ASYNC of each primary (its
// replicas follow).
Status RedisClusterBackend::clear() {
  if (!options_.clear_flushes_db) {
    if (!options_.clear_scope.empty()) return erase_pattern(options_.clear_scope).status();
    if (!options_.key_namespace.empty()) return erase_pattern("*").status();
  }
  return on_each_primary([&](Connection& c) -> Status {
    c.out().command({"FLUSHDB", "ASYNC"});
    return round_trip(c).status();
  });
}

// ---- stats ----

namespace {

constexpr std::string_view kNodeFields[] = {
    "role",         "connected_clients", "used_memory_human", "keyspace_hits", "keyspace_misses",
    "evicted_keys", "expired_keys"};

void add_node_info(std::string_view prefix, std::string_view info, StatPairs& out) {
  while (!info.empty()) {
    auto end = info.find("\r\n");
    std::string_view line = info.substr(0, end);
    info = end == std::string_view::npos ? std::string_view() : info.substr(end + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    if (std::find(std::begin(kNodeFields), std::end(kNodeFields), name) != std::end(kNodeFields)) {
      out.emplace_back(fmt::format("{}{}", prefix, name), line.substr(colon + 1));
    }
  }
}

void add_pool(std::string_view prefix, const PoolCounters& c, StatPairs& out) {
  auto add = [&](std::string_view name, auto value) {
    out.emplace_back(fmt::format("{}pool.{}", prefix, name), fmt::format("{}", value));
  };
  add("open", c.open);
  add("created", c.created);
  add("failures", c.failures);
  add("trips", c.trips);
  add("fast_failures", c.fast_failures);
  add("down", c.down);
}

// One node's lines, "node.<host:port>.<name>"; a node that does not answer says so.
void add_node(Pool& pool, bool primary, StatPairs& out, std::int64_t& keys) {
  std::string prefix = fmt::format("node.{}.", pool.where());
  out.emplace_back(prefix + "serves", primary ? "primary" : "replica");
  auto lease = pool.acquire();
  Result<Reply> info = lease.ok() ? Result<Reply>(Status()) : Result<Reply>(lease.status());
  if (lease.ok()) {
    (*lease)->out().command({"INFO"});
    (*lease)->out().command({"DBSIZE"});
    info = round_trip(**lease);
    auto size = info.ok() ? (*lease)->read_ok() : Result<Reply>(info.status());
    if (size.ok() && (*size)->type == REDIS_REPLY_INTEGER) {
      out.emplace_back(prefix + "keys", fmt::format("{}", (*size)->integer));
      if (primary) keys += (*size)->integer;
    }
  }
  if (info.ok() && (*info)->type == REDIS_REPLY_STRING) {
    add_node_info(prefix, text_of(**info), out);
  } else {
    out.emplace_back(prefix + "error",
                     info.ok() ? "unexpected INFO reply" : info.status().message());
  }
  add_pool(prefix, pool.counters(), out);
}

}  // namespace

Result<StatPairs> RedisClusterBackend::stats() {
  auto map = topology();
  if (!map.ok()) return map.status();
  StatPairs nodes;
  std::int64_t keys = 0;
  for (const auto& shard : (*map)->shards) {
    add_node(*shard.primary, true, nodes, keys);
    for (Pool* replica : shard.replicas) add_node(*replica, false, nodes, keys);
  }
  std::size_t served = static_cast<std::size_t>(std::count_if(
      (*map)->shard_of.begin(), (*map)->shard_of.end(), [](auto s) { return s >= 0; }));
  StatPairs out{{"cluster_primaries", fmt::format("{}", (*map)->shards.size())},
                {"cluster_slots_served", fmt::format("{}", served)},
                {"keys", fmt::format("{}", keys)}};
  out.insert(out.end(), nodes.begin(), nodes.end());
  return out;
}

}  // namespace cachekit::redis_internal
