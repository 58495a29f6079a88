// `cachekit proxy`: the caching reverse proxy (docs/proxy.md).
//
//   cachekit proxy --listen 127.0.0.1:8080 --upstream 127.0.0.1:8000 [--upstream HOST:PORT ...]
//                  [--config FILE --cache ALIAS] [--admin 127.0.0.1:9090]
//
// Without --config the pages live in this process (a locmem cache of 256 MiB); with it, in the
// cache ALIAS of the configuration — a Redis cache shares the pages between proxy instances.
#include "proxy_command.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>

#include "cachekit/caches.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/proxy/proxy.h"
#include "cachekit/server/server.h"

namespace cachekit::cli {

namespace {

struct Address {
  std::string host;
  std::uint16_t port = 0;
};

Address parse_address(const std::string& text, std::string_view flag) {
  auto colon = text.rfind(':');
  unsigned port = 0;
  const char* end = text.data() + text.size();
  if (colon == std::string::npos ||
      std::from_chars(text.data() + colon + 1, end, port).ptr != end || port > 65535) {
    throw std::invalid_argument(fmt::format("{}: '{}' is not ADDRESS:PORT", flag, text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";
  return {host, static_cast<std::uint16_t>(port)};
}

}  // namespace

void add_proxy_command(CLI::App& app, ProxyRequest& r, std::string& command) {
  auto* sub = app.add_subcommand(
      "proxy", "Run the caching reverse proxy in front of one or more HTTP origins");
  sub->add_option("--listen", r.listen, "ADDRESS:PORT to serve clients on")->capture_default_str();
  sub->add_option("--upstream", r.upstreams, "An origin HOST:PORT (repeat for round-robin)")
      ->required();
  sub->add_option("--admin", r.admin,
                  "ADDRESS:PORT of the admin listener (/metrics); none if unset");
  sub->add_option("--io-threads", r.io_threads, "Event loops (0: one per core)")
      ->capture_default_str();
  sub->add_option("--handler-threads", r.handler_threads, "Threads that wait on origins (misses)")
      ->capture_default_str();
  sub->add_option("--default-ttl", r.default_ttl,
                  "Seconds to keep a 200 that gives no freshness (0: not stored, as RFC 9111)")
      ->capture_default_str();
  sub->add_option("--max-object-bytes", r.max_object_bytes,
                  "Larger responses are streamed to the client as they arrive, not stored")
      ->capture_default_str();
  sub->add_option("--stale-while-revalidate", r.stale_while_revalidate,
                  "Seconds a stale page is served while one refresh runs (when the origin "
                  "does not say more)")
      ->capture_default_str();
  sub->add_option("--stale-if-error", r.stale_if_error,
                  "Seconds a stale page stands in for a failing origin (when it does not say "
                  "more)")
      ->capture_default_str();
  sub->add_option("--response-timeout", r.response_timeout_ms,
                  "Milliseconds an origin has to answer (then 504)")
      ->capture_default_str();
  sub->add_option("--health-path", r.health_path, "Path of the active health check (\"\": none)")
      ->capture_default_str();
  sub->add_flag("--trust-forwarded", r.trust_forwarded,
                "Keep the client's X-Forwarded-* fields (only behind another trusted proxy)");
  sub->add_option("--purge-from", r.purge_from,
                  "Client addresses (or \"loopback\") allowed to PURGE a URI; none by default");
  sub->add_option("--max-requests-per-connection", r.max_requests_per_connection,
                  "Then the client connection is closed (0: no limit)")
      ->capture_default_str();
  sub->add_flag("--quiet", r.quiet, "No access log");
  sub->fallthrough();  // --config and --cache may follow `proxy` too
  sub->callback([&command] { command = "proxy"; });
}

int run_proxy(const ProxyRequest& r, const std::function<Caches()>& load_caches) {
  std::optional<Caches> caches;
  if (r.config.empty() && std::getenv("CACHEKIT_CONFIG") == nullptr) {
    caches.emplace(
        Caches::from_toml("[caches.default]\nbackend = \"locmem\"\nlocation = \"proxy\"\n"
                          "options = { max_entries = 1000000, max_bytes = 268435456 }\n",
                          "(built-in proxy configuration)"));
  } else {
    caches.emplace(load_caches());
  }
  Cache& cache = caches->at(r.alias);

  proxy::UpstreamOptions upstream{
      .origins = r.upstreams,
      .response_timeout = std::chrono::milliseconds(r.response_timeout_ms),
      .stream_above = r.max_object_bytes,
      .health_path = r.health_path};
  proxy::Upstreams upstreams(std::move(upstream));

  auto page_cache = std::make_shared<const http::PageCache>(http::PageCacheOptions{
      .cache = &cache,
      .default_timeout = std::chrono::seconds(r.default_ttl),
      .stale_while_revalidate = std::chrono::seconds(r.stale_while_revalidate),
      .stale_if_error = std::chrono::seconds(r.stale_if_error),
      .reverse_proxy = true,
      .max_body_bytes = r.max_object_bytes});

  Address listen = parse_address(r.listen, "--listen");
  server::Server server({.address = listen.host,
                         .port = listen.port,
                         .io_threads = r.io_threads,
                         .handler_threads = r.handler_threads,
                         .max_body_bytes = 64 * 1024 * 1024,
                         .max_requests_per_connection = r.max_requests_per_connection,
                         .allowed_hosts = {"*"},
                         .access_log = !r.quiet,
                         .metrics_path = "",  // /metrics belongs to the origin here
                         .router = {.append_slash = false}});
  server.router().fallback(proxy::caching_handler(
      upstreams, page_cache,
      {.trust_forwarded = r.trust_forwarded, .purge_allowed_clients = r.purge_from}));

  std::unique_ptr<server::Server> admin;
  if (!r.admin.empty()) {
    Address at = parse_address(r.admin, "--admin");
    admin = std::make_unique<server::Server>(server::ServerOptions{.address = at.host,
                                                                   .port = at.port,
                                                                   .io_threads = 1,
                                                                   .handler_threads = 1,
                                                                   .access_log = false});
    admin->watch_cache(r.alias, cache);
    admin->add_metrics_text([&server, &upstreams, page_cache] {
      auto s = server.stats();
      auto p = page_cache->stats();
      return fmt::format(
                 "# HELP cachekit_proxy_requests_total Requests the proxy answered.\n"
                 "# TYPE cachekit_proxy_requests_total counter\n"
                 "cachekit_proxy_requests_total {}\n"
                 "# HELP cachekit_proxy_hits_on_io_thread_total Answered without a handler "
                 "thread (hits).\n"
                 "# TYPE cachekit_proxy_hits_on_io_thread_total counter\n"
                 "cachekit_proxy_hits_on_io_thread_total {}\n"
                 "# HELP cachekit_proxy_revalidated_total Stale pages the origin confirmed "
                 "with 304.\n"
                 "# TYPE cachekit_proxy_revalidated_total counter\n"
                 "cachekit_proxy_revalidated_total {}\n"
                 "# HELP cachekit_proxy_stale_served_total Stale pages served "
                 "(while revalidating or in place of an error).\n"
                 "# TYPE cachekit_proxy_stale_served_total counter\n"
                 "cachekit_proxy_stale_served_total {}\n"
                 "# HELP cachekit_proxy_coalesced_waiters Requests waiting for a concurrent "
                 "miss now.\n"
                 "# TYPE cachekit_proxy_coalesced_waiters gauge\n"
                 "cachekit_proxy_coalesced_waiters {}\n",
                 s.requests, s.answered_on_io_thread, p.revalidated,
                 p.stale_while_revalidate + p.stale_if_error, page_cache->coalesced_waiters()) +
             upstreams.metrics_text();
    });
    admin->start();
  }
  server.run([&](server::Server& s) {
    fmt::print(stderr, "cachekit proxy: listening on {}:{}, origins {}{}\n", listen.host, s.port(),
               fmt::join(r.upstreams, ", "),
               admin ? fmt::format(", admin on {}", r.admin) : std::string());
  });
  if (admin) admin->stop();
  return 0;
}

}  // namespace cachekit::cli
