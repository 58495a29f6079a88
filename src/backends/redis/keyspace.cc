// The Redis backend's whole-keyspace operations (keys, clear, erase_pattern) and stats, and
// the public redis::erase_pattern of cachekit/backends/redis.h.
//
// Pattern deletion is SCAN-based, never KEYS: KEYS walks the whole keyspace in one blocking
// call, which stalls every other client of a big server (django-redis #141, commcare-hq
// #24777). SCAN with COUNT 1000 takes about keys/1000 round trips (COUNT 10, django-redis'
// default, takes a hundred times more), and each batch's UNLINK is sent in the same write
// as the next SCAN, so deleting costs no extra round trip.
#include <fmt/format.h>

#include <algorithm>

#include "backends/redis/cluster_backend.h"
#include "backends/redis/redis_backend.h"

namespace cachekit {
namespace redis_internal {
namespace {

constexpr std::string_view kScanCount = "1000";

// A SCAN reply: [next cursor, [key, ...]]; `keys` points into `reply`.
struct ScanPage {
  Reply reply;
  std::string cursor;
  const redisReply* keys = nullptr;
  [[nodiscard]] std::string_view key(std::size_t i) const {
    return {keys->element[i]->str, keys->element[i]->len};
  }
};

Result<ScanPage> scan_page(std::string_view where, Result<Reply> reply) {
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 || r.element[0]->type != REDIS_REPLY_STRING ||
      r.element[1]->type != REDIS_REPLY_ARRAY) {
    return unexpected_reply(where, "SCAN", r);
  }
  std::string cursor(r.element[0]->str, r.element[0]->len);
  const redisReply* keys = r.element[1];
  return ScanPage{std::move(reply).value(), std::move(cursor), keys};
}

void scan_command(CommandBuffer& out, std::string_view cursor, std::string_view glob) {
  out.command({"SCAN", cursor, "MATCH", glob, "COUNT", kScanCount});
}

// The INFO fields worth showing an operator; INFO has about 150.
constexpr std::string_view kInfoFields[] = {"redis_version",
                                            "role",
                                            "uptime_in_seconds",
                                            "connected_clients",
                                            "used_memory",
                                            "used_memory_human",
                                            "maxmemory",
                                            "maxmemory_policy",
                                            "keyspace_hits",
                                            "keyspace_misses",
                                            "evicted_keys",
                                            "expired_keys",
                                            "total_commands_processed"};

void add_info_fields(std::string_view info, StatPairs& out) {
  while (!info.empty()) {
    auto end = info.find("\r\n");
    std::string_view line = info.substr(0, end);
    info = end == std::string_view::npos ? std::string_view() : info.substr(end + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    if (std::find(std::begin(kInfoFields), std::end(kInfoFields), name) != std::end(kInfoFields)) {
      out.emplace_back(name, line.substr(colon + 1));
    }
  }
}

void add_pool_counters(std::string_view prefix, const PoolCounters& c, StatPairs& out) {
  auto add = [&](std::string_view name, auto value) {
    out.emplace_back(fmt::format("{}{}", prefix, name), fmt::format("{}", value));
  };
  add("open", c.open);
  add("idle", c.idle);
  add("created", c.created);
  add("discarded", c.discarded);
  add("waits", c.waits);
  add("wait_timeouts", c.wait_timeouts);
  add("failures", c.failures);
  add("trips", c.trips);
  add("fast_failures", c.fast_failures);
  add("down", c.down);
}

}  // namespace

std::string RedisBackend::namespaced_glob(std::string_view pattern) const {
  return escape_glob(options_.key_namespace) + std::string(pattern);
}

// SCAN may return a key twice (when the table is rehashed between calls), hence the dedup.
Result<std::vector<std::string>> RedisBackend::keys(std::string_view pattern) {
  std::string glob = namespaced_glob(pattern);
  auto scan = [&](Connection& c) -> Result<std::vector<std::string>> {
    std::vector<std::string> out;
    std::string cursor = "0";
    do {
      scan_command(c.out(), cursor, glob);
      auto page = scan_page(c.where(), round_trip(c));
      if (!page.ok()) return page.status();
      for (std::size_t i = 0; i < page->keys->elements; ++i) {
        out.emplace_back(page->key(i).substr(options_.key_namespace.size()));
      }
      cursor = std::move(page->cursor);
    } while (cursor != "0");
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  return on_primary(scan, false);
}

Result<std::size_t> RedisBackend::scan_and_unlink(std::string_view glob) {
  return on_primary([&](Connection& c) -> Result<std::size_t> {
    std::size_t removed = 0;
    bool unlink_sent = false;
    scan_command(c.out(), "0", glob);
    if (Status s = c.send(); !s.ok()) return s;
    for (;;) {
      if (unlink_sent) {  // the previous batch's UNLINK, sent just before this SCAN
        auto reply = c.read_ok();
        if (!reply.ok()) return reply.status();
        removed += static_cast<std::size_t>(std::max(0LL, (*reply)->integer));
      }
      auto page = scan_page(c.where(), c.read_ok());
      if (!page.ok()) return page.status();
      unlink_sent = page->keys->elements > 0;
      if (unlink_sent) {
        c.out().begin(1 + page->keys->elements);
        c.out().arg("UNLINK");
        for (std::size_t i = 0; i < page->keys->elements; ++i) c.out().arg(page->key(i));
      }
      bool more = page->cursor != "0";
      if (more) scan_command(c.out(), page->cursor, glob);
      if (!more && !unlink_sent) return removed;
      if (Status s = c.send(); !s.ok()) return s;
      if (!more) {
        auto reply = c.read_ok();
        if (!reply.ok()) return reply.status();
        return removed + static_cast<std::size_t>(std::max(0LL, (*reply)->integer));
      }
    }
  });
}

// A scoped clear (a cache's key prefix, or a namespace) removes only its keys: the database
// may hold other applications' data. Without a scope, or when clear_flushes_db asks for it,
// the whole selected database goes (FLUSHDB, as Django does; ASYNC frees the memory off the
// server's main thread), but never other databases (no FLUSHALL).
Status RedisBackend::clear() {
  if (options_.clear_flushes_db) return flush_db();
  if (!options_.clear_scope.empty())
    return scan_and_unlink(namespaced_glob(options_.clear_scope)).status();
  if (!options_.key_namespace.empty()) return scan_and_unlink(namespaced_glob("*")).status();
  return flush_db();
}

Status RedisBackend::flush_db() {
  return on_primary([&](Connection& c) -> Result<bool> {
           c.out().command({"FLUSHDB", "ASYNC"});
           auto reply = round_trip(c);
           if (!reply.ok()) return reply.status();
           return true;
         })
      .status();
}

Result<std::size_t> RedisBackend::erase_pattern(std::string_view pattern) {
  return scan_and_unlink(namespaced_glob(pattern));
}

Result<StatPairs> RedisBackend::stats() {
  auto query = [&](Connection& c) -> Result<StatPairs> {
    c.out().command({"INFO"});
    c.out().command({"DBSIZE"});
    auto info = round_trip(c);
    if (!info.ok()) return info.status();
    auto size = c.read_ok();
    if (!size.ok()) return size.status();
    if ((*info)->type != REDIS_REPLY_STRING) return unexpected_reply(c.where(), "INFO", **info);
    if ((*size)->type != REDIS_REPLY_INTEGER) return unexpected_reply(c.where(), "DBSIZE", **size);
    StatPairs out{{"server", std::string(c.where())}};
    add_info_fields(std::string_view((*info)->str, (*info)->len), out);
    out.emplace_back("keys", fmt::format("{}", (*size)->integer));
    return out;
  };
  const NodesView view = nodes();
  auto out = primary_call(*view.nodes, query, false);
  if (!out.ok()) return out;
  const auto& pools = view->pools;
  for (std::size_t i = 0; i < pools.size(); ++i) {
    std::string prefix = i == 0 ? "pool." : fmt::format("replica{}.pool.", i);
    if (i > 0) out->emplace_back(fmt::format("replica{}.server", i), pools[i]->where());
    add_pool_counters(prefix, pools[i]->counters(), *out);
  }
  add_sentinel_stats(*out);
  return out;
}

}  // namespace redis_internal

namespace redis {

Result<std::size_t> erase_pattern(Backend& backend, std::string_view pattern) {
  if (auto* cluster = dynamic_cast<redis_internal::RedisClusterBackend*>(&backend)) {
    return cluster->erase_pattern(pattern);  // every primary
  }
  auto redis = redis_internal::as_redis_backend(backend);
  if (!redis.ok()) return redis.status();
  return (*redis)->erase_pattern(pattern);
}

Result<std::size_t> erase_pattern(const Cache& cache, std::string_view pattern, Version version) {
  const CacheOptions& options = cache.options();
  if (options.key_function) {
    return unimplemented_error("erase_pattern needs the default key function to match keys");
  }
  std::string head =
      default_key_function("", options.key_prefix, version.value_or(options.version));
  return erase_pattern(cache.backend(), escape_glob(head) + std::string(pattern));
}

}  // namespace redis
}  // namespace cachekit
