// The server bench/http/run.sh measures: one cache_page'd route, /page.txt (the URL nginx
// serves the same bytes under), answering a 1 KB body
// from the in-process (locmem) store, one io thread, access log off. After the first request
// every request is a page-cache hit answered on the io thread.
//
//   page_cache_server [port] [body bytes] [store]   (defaults: 8080, 1024, locmem; port 0 =
//                                                    ephemeral)
//   store: locmem, redis://host:port/db, or tiered:redis://host:port/db (a locmem tier in
//   front of that Redis, kept coherent by its change feed) — bench/http/stores.sh.
//
// Prints "listening on <port>" once it accepts connections; stops on SIGINT/SIGTERM.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cachekit/backends/locmem.h"
#include "cachekit/backends/redis.h"
#include "cachekit/backends/tiered.h"
#include "cachekit/cache.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/server.h"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  namespace http = cachekit::http;
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  const std::size_t body_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024;

  const std::string store = argc > 3 ? argv[3] : "locmem";
  std::shared_ptr<cachekit::Backend> backend = cachekit::make_locmem_backend();
  if (store != "locmem") {
    const bool tiered = store.starts_with("tiered:");
    auto redis = cachekit::make_redis_backend(
        {.locations = {tiered ? store.substr(7) : store}, .pool_size = 64});
    if (!redis.ok()) {
      std::fprintf(stderr, "%s\n", redis.status().to_string().c_str());
      return 2;
    }
    backend = *redis;
    if (tiered) {
      auto both = cachekit::make_tiered_backend({.shared = backend});
      if (!both.ok()) {
        std::fprintf(stderr, "%s\n", both.status().to_string().c_str());
        return 2;
      }
      backend = *both;
    }
  }
  cachekit::Cache cache(backend);
  // No per-connection request cap: nginx.conf.in sets keepalive_requests 1000000 to match.
  cachekit::server::Server server({.port = port,
                                   .io_threads = 1,
                                   .handler_threads = 2,
                                   .max_requests_per_connection = 0,
                                   .access_log = false});
  const std::string body(body_bytes, 'x');  // run.sh gives nginx the same bytes
  server.router().get(
      "/page.txt",
      http::cache_page(1h, [&body](http::Request&) { return http::Response::text(body); },
                       {.cache = &cache}));
  server.watch_cache("default", cache);
  server.run([](cachekit::server::Server& s) {
    std::printf("listening on %u\n", static_cast<unsigned>(s.port()));
    std::fflush(stdout);
  });
  return 0;
}
