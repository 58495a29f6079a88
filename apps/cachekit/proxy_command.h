#pragma once
// `cachekit proxy`: the command line of the caching reverse proxy (proxy_command.cc).

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cachekit/caches.h"

namespace cachekit::cli {

struct ProxyRequest {
  std::string config;  // the global --config (empty: the built-in locmem cache)
  std::string alias = "default";
  std::string listen = "127.0.0.1:8080";
  std::vector<std::string> upstreams;
  std::string admin;
  std::size_t io_threads = 0;
  std::size_t handler_threads = 128;  // misses wait on origins, coalesced ones on the leader
  std::int64_t default_ttl = 0;
  std::size_t max_object_bytes = std::size_t{16} * 1024 * 1024;
  std::int64_t stale_while_revalidate = 0;
  std::int64_t stale_if_error = 0;
  std::int64_t response_timeout_ms = 30'000;
  std::string health_path = "/";
  bool trust_forwarded = false;
  std::vector<std::string> purge_from;
  std::size_t max_requests_per_connection = 1000;
  bool quiet = false;
};

// Registers the `proxy` subcommand on `app`; parsing it sets `command` to "proxy".
void add_proxy_command(CLI::App& app, ProxyRequest& request, std::string& command);
// Runs the proxy until SIGINT/SIGTERM. `load_caches` reads the configuration (--config).
int run_proxy(const ProxyRequest& request, const std::function<Caches()>& load_caches);

}  // namespace cachekit::cli
