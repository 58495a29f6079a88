// The "redis" entry of the configuration registry: a [caches.<alias>] table (or a
// redis://... or sentinel://... url, or CACHEKIT_CACHE_URL) → RedisOptions.
//
// Several servers may be given as a list, as one string split on ',' or ';' (Django's
// LOCATION rule, applied by the loader), or — since a url field is one string — as
// "redis://primary,redis://replica". The split happens only in front of a scheme, so a
// password holding a ',' still works there (and in a list item).
//
// A Redis Cluster: `cluster = true` (the locations are seed nodes), or
// url = "redis-cluster://h:p,h:p" (also a backend name, "redis-cluster").
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "cachekit/backends/redis.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"
#include "config/option_names.h"

namespace cachekit {
namespace {

constexpr std::int64_t kMaxMs = 3'600'000;  // an hour: anything longer is a typo

// True when `text` starts with "<scheme>://".
bool starts_with_scheme(std::string_view text) {
  auto end = text.find("://");
  if (end == std::string_view::npos || end == 0) return false;
  return std::all_of(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(end),
                     [](char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; });
}

std::vector<std::string> split_servers(const std::vector<std::string>& locations) {
  std::vector<std::string> out;
  for (std::string_view location : locations) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < location.size(); ++i) {
      if (location[i] != ',' && location[i] != ';') continue;
      auto next = location.find_first_not_of(' ', i + 1);
      if (next == std::string_view::npos || !starts_with_scheme(location.substr(next))) continue;
      out.emplace_back(location.substr(start, i - start));
      start = next;
    }
    out.emplace_back(location.substr(start));
  }
  return out;
}

// Cluster seeds as redis:// URLs: "redis-cluster://[userinfo@]h:p,h:p" names several nodes
// in one URL (the userinfo, if any, applies to all), and a bare "h:p" is a node too.
std::vector<std::string> cluster_seeds(const std::vector<std::string>& locations) {
  constexpr std::string_view kScheme = "redis-cluster://";
  std::vector<std::string> out;
  std::string userinfo;
  for (std::string_view location : locations) {
    bool several = location.starts_with(kScheme);
    if (several) location.remove_prefix(kScheme.size());
    if (!several && starts_with_scheme(location)) {
      out.emplace_back(location);
      continue;
    }
    for (std::size_t at = 0; at != std::string_view::npos;) {
      auto comma = several ? location.find(',', at) : std::string_view::npos;
      std::string_view node =
          location.substr(at, comma == std::string_view::npos ? comma : comma - at);
      at = comma == std::string_view::npos ? comma : comma + 1;
      if (auto sign = node.rfind('@'); sign != std::string_view::npos) {
        userinfo = std::string(node.substr(0, sign + 1));
        node.remove_prefix(sign + 1);
      }
      out.push_back(fmt::format("redis://{}{}", userinfo, node));
    }
  }
  return out;
}

std::chrono::milliseconds ms_option(const BackendSpec& spec, std::string_view name,
                                    std::chrono::milliseconds fallback, std::int64_t min = 1) {
  return std::chrono::milliseconds(
      spec.integer_option(name, min, kMaxMs).value_or(fallback.count()));
}

std::shared_ptr<Backend> make_redis(const BackendSpec& given) {
  const BackendSpec spec =
      with_current_option_names(given, {{"timeout_ms", "io_timeout_ms"},
                                        {"max_connections", "pool_size"},
                                        {"pool_timeout_ms", "pool_wait_ms"},
                                        {"retry_interval_ms", "retry_after_ms"},
                                        {"failure_threshold", "down_after_failures"}});
  spec.reject_unknown_options({"connect_timeout_ms", "io_timeout_ms", "pool_size", "pool_wait_ms",
                               "retry_after_ms", "down_after_failures", "namespace", "clear_scope",
                               "clear_flushes_db", "wait_replicas", "wait_timeout_ms", "cluster",
                               "read_from_replicas"});
  if (spec.locations.empty()) {
    throw spec.error("location",
                     "the redis backend needs a server URL, e.g. location = "
                     "\"redis://127.0.0.1:6379/0\" (more URLs add read replicas)");
  }
  RedisOptions o;
  o.locations = split_servers(spec.locations);
  o.connect_timeout = ms_option(spec, "connect_timeout_ms", o.connect_timeout);
  o.io_timeout = ms_option(spec, "io_timeout_ms", o.io_timeout);
  o.pool_wait = ms_option(spec, "pool_wait_ms", o.pool_wait);
  o.retry_after = ms_option(spec, "retry_after_ms", o.retry_after, 0);
  o.wait_timeout = ms_option(spec, "wait_timeout_ms", o.wait_timeout);
  o.pool_size =
      static_cast<std::size_t>(spec.integer_option("pool_size", 1, 100'000).value_or(o.pool_size));
  o.down_after_failures = static_cast<unsigned>(
      spec.integer_option("down_after_failures", 1, 1'000).value_or(o.down_after_failures));
  o.wait_replicas = static_cast<unsigned>(
      spec.integer_option("wait_replicas", 0, 1'000).value_or(o.wait_replicas));
  o.key_namespace = spec.string_option("namespace").value_or(o.key_namespace);
  o.clear_scope = spec.string_option("clear_scope").value_or(o.clear_scope);
  // The cache's keys are "<key_prefix>:<version>:<key>": with a prefix, clear() removes only
  // those, and leaves whatever else lives in the database.
  if (o.clear_scope.empty() && !spec.key_prefix.empty()) {
    o.clear_scope = escape_glob(spec.key_prefix) + ":*";
  }
  o.clear_flushes_db = spec.bool_option("clear_flushes_db").value_or(o.clear_flushes_db);
  o.clock = spec.clock;
  const bool cluster =
      spec.backend == "redis-cluster" || spec.bool_option("cluster").value_or(false) ||
      std::any_of(o.locations.begin(), o.locations.end(),
                  [](std::string_view l) { return l.starts_with("redis-cluster://"); });
  auto read_from_replicas = spec.bool_option("read_from_replicas");
  if (read_from_replicas && !cluster) {
    throw spec.error("options.read_from_replicas",
                     "applies to a cluster (cluster = true); a single server reads from the "
                     "replicas listed after the primary");
  }
  if (cluster) o.locations = cluster_seeds(o.locations);
  auto backend = cluster
                     ? make_redis_cluster_backend(
                           std::move(o), {.read_from_replicas = read_from_replicas.value_or(false)})
                     : make_redis_backend(std::move(o));
  if (!backend.ok()) throw spec.error("location", backend.status().message());
  return std::move(backend).value();
}

// url = "rediss://..." names a backend "rediss"; without this entry the user would read
// "unknown backend" instead of why.
std::shared_ptr<Backend> refuse_tls(const BackendSpec& spec) {
  throw spec.error("url",
                   "rediss:// (TLS) is not supported: hiredis 0.14 has no TLS; reach the server "
                   "through a local TLS tunnel (e.g. stunnel) with redis://");
}

}  // namespace

void register_redis_backend(BackendRegistry& registry) {
  registry.add("redis", make_redis);
  // url = "sentinel://h:p,h:p/mymaster/2": the same backend, finding its primary through
  // Redis Sentinel.
  registry.add("sentinel", make_redis);
  registry.add("rediss", refuse_tls);
  registry.add("redis-cluster", make_redis);
}

}  // namespace cachekit
