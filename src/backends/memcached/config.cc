// The "memcached" entry of the backend registry: BackendSpec (TOML or URL) → MemcachedOptions.
//
//   [caches.default]
//   backend = "memcached"
//   location = ["10.0.0.1:11211", "10.0.0.2:11211"]   # or "a:11211;b:11211", or unix:/path
//   options = { io_timeout_ms = 200, connect_timeout_ms = 200, pool_size = 8 }
//
//   url = "memcached://10.0.0.1:11211,10.0.0.2:11211"  # the same servers as one URL
#include <fmt/format.h>

#include "cachekit/backends/memcached.h"
#include "cachekit/caches.h"
#include "config/builtin_backends.h"
#include "config/option_names.h"

namespace cachekit {

namespace {

std::vector<std::string> servers_of(const BackendSpec& spec) {
  std::vector<std::string> servers;
  // A URL arrives as one location ("memcached://a:1,b:2"); a TOML list or string is already
  // split on ';' and ','. Both go through the same parser so every form is checked alike.
  for (const auto& location : spec.locations) {
    auto parsed = parse_memcached_locations(location);
    if (!parsed.ok()) throw spec.error("location", parsed.status().message());
    servers.insert(servers.end(), parsed->begin(), parsed->end());
  }
  if (servers.empty()) {
    throw spec.error("location",
                     "the memcached backend needs its servers, e.g. location = "
                     "[\"127.0.0.1:11211\"] or url = \"memcached://127.0.0.1:11211\"");
  }
  return servers;
}

std::shared_ptr<Backend> make_memcached(const BackendSpec& given) {
  const BackendSpec spec =
      with_current_option_names(given, {{"timeout_ms", "io_timeout_ms"},
                                        {"server_failure_limit", "down_after_failures"},
                                        {"retry_timeout_s", "retry_after_ms", 1000}});
  spec.reject_unknown_options({"connect_timeout_ms", "io_timeout_ms", "pool_size", "pool_wait_ms",
                               "down_after_failures", "retry_after_ms", "remove_failed_servers"});
  MemcachedOptions o;
  o.servers = servers_of(spec);
  // Unset options keep MemcachedOptions' defaults, which are written only there.
  using std::chrono::milliseconds;
  const auto ms = [&](std::string_view name, std::int64_t min, std::int64_t max,
                      milliseconds fallback) {
    return milliseconds(spec.integer_option(name, min, max).value_or(fallback.count()));
  };
  o.connect_timeout = ms("connect_timeout_ms", 1, 60'000, o.connect_timeout);
  o.io_timeout = ms("io_timeout_ms", 1, 60'000, o.io_timeout);
  o.pool_size =
      static_cast<unsigned>(spec.integer_option("pool_size", 1, 1024).value_or(o.pool_size));
  o.pool_wait = ms("pool_wait_ms", 0, 60'000, o.pool_wait);
  o.down_after_failures = static_cast<unsigned>(
      spec.integer_option("down_after_failures", 1, 1000).value_or(o.down_after_failures));
  o.retry_after = ms("retry_after_ms", 1, 3'600'000, o.retry_after);
  o.remove_failed_servers =
      spec.bool_option("remove_failed_servers").value_or(o.remove_failed_servers);
  o.clock = spec.clock;
  auto backend = make_memcached_backend(o);
  if (!backend.ok()) throw spec.error("location", backend.status().message());
  return std::move(backend).value();
}

}  // namespace

void register_memcached_backend(BackendRegistry& registry) {
  registry.add("memcached", make_memcached);
}

}  // namespace cachekit
