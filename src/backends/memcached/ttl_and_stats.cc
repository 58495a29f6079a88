// ttl and stats for the memcached backend: both go over the meta-protocol side channel.
#include <fmt/format.h>

#include <algorithm>
#include <string_view>

#include "backends/memcached/memcached_backend.h"

namespace cachekit::memcached_internal {

// `mg <key> t` — the classic protocols have no way to ask for a remaining lifetime.
Result<Ttl> MemcachedBackend::ttl(std::string_view key) {
  auto lease = pool_.acquire();
  if (!lease.ok()) return lease.status();
  memcached_st* m = lease->get();
  if (Status s = admit(m, key); !s.ok()) return s;
  std::size_t server = server_of(m, key);
  if (server == kNoServer) return unavailable_error("memcached: no live server for ttl");
  auto item = meta_.get(server, key, /*with_value=*/false);
  if (!item.ok()) return meta_failure(server, item.status());
  observe(server, false);
  if (!item->has_value()) return Ttl::missing();
  return ttl_from_meta((*item)->ttl);
}

namespace {

constexpr std::string_view kShownStats[] = {
    "version",        "uptime",   "curr_items", "total_items", "bytes",
    "limit_maxbytes", "get_hits", "get_misses", "evictions",   "curr_connections"};
constexpr std::string_view kSummedStats[] = {"curr_items", "bytes", "get_hits", "get_misses",
                                             "evictions"};

// Appends one server's interesting stats as "<prefix><name>" and adds to the totals.
void append_server_stats(const std::string& prefix,
                         const std::vector<std::pair<std::string, std::string>>& stats,
                         StatPairs& out, std::vector<std::uint64_t>& totals) {
  for (const auto& [name, value] : stats) {
    if (std::find(std::begin(kShownStats), std::end(kShownStats), name) == std::end(kShownStats)) {
      continue;
    }
    out.emplace_back(prefix + name, value);
    auto summed = std::find(std::begin(kSummedStats), std::end(kSummedStats), name);
    if (summed != std::end(kSummedStats)) {
      totals[static_cast<std::size_t>(summed - std::begin(kSummedStats))] +=
          std::strtoull(value.c_str(), nullptr, 10);
    }
  }
}

}  // namespace

// Per server "<address>.<stat>" for the counters an operator looks at first, then the totals.
// A server that cannot be reached is listed as such instead of failing the whole call. The
// stats come over the side channel: libmemcached's memcached_stat_execute gives up on every
// server as soon as one of them is down.
Result<StatPairs> MemcachedBackend::stats() {
  StatPairs out{{"servers", std::to_string(servers_.size())}};
  std::vector<std::uint64_t> totals(std::size(kSummedStats), 0);
  std::size_t answered = 0;
  Status last = unavailable_error("no memcached server answered");
  for (std::size_t s = 0; s < servers_.size(); ++s) {
    std::string prefix = servers_[s].display() + ".";
    if (!health_.admit(s, std::chrono::steady_clock::now())) {
      out.emplace_back(prefix + "error", "skipped: not answering");
      continue;
    }
    auto server_stats = meta_.stats(s);
    if (!server_stats.ok()) {
      last = meta_failure(s, server_stats.status());
      out.emplace_back(prefix + "error", last.to_string());
      continue;
    }
    observe(s, false);
    ++answered;
    append_server_stats(prefix, *server_stats, out, totals);
  }
  if (answered == 0) return last;
  for (std::size_t i = 0; i < std::size(kSummedStats); ++i) {
    out.emplace_back(std::string(kSummedStats[i]), std::to_string(totals[i]));
  }
  return out;
}

}  // namespace cachekit::memcached_internal
