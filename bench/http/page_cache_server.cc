// The server bench/http/run.sh measures: one cache_page'd route, /page.txt (the URL nginx
// serves the same bytes under), answering a 1 KB body
// from the in-process (locmem) store, one io thread, access log off. After the first request
// every request is a page-cache hit answered on the io thread.
//
//   page_cache_server [port] [body bytes]     (defaults: 8080, 1024; port 0 = ephemeral)
//
// Prints "listening on <port>" once it accepts connections; stops on SIGINT/SIGTERM.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/server.h"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  namespace http = cachekit::http;
  const auto port = static_cast<std::uint16_t>(argc > 1 ? std::atoi(argv[1]) : 8080);
  const std::size_t body_bytes = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024;

  cachekit::Cache cache(cachekit::make_locmem_backend());
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
