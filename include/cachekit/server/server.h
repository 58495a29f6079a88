#pragma once
// Server: cachekit's HTTP/1.1 server (Boost.Beast underneath, kept out of this header).
//
//   cachekit::server::Server server({.port = 8000});
//   server.router().get("/hello/", [](http::Request&) { return http::Response::text("hi"); });
//   server.router().get("/page/", http::cache_page(5min, page, {.cache = &cache}));
//   server.watch_cache("default", cache);   // backend errors in /metrics
//   server.run();                           // until SIGINT/SIGTERM, then a graceful stop
//
// Threads. `io_threads` event loops (one per core by default) accept connections and parse and
// write HTTP; user handlers and middleware run on a separate handler pool of `handler_threads`
// threads with a bounded queue, so a handler may block (on a database, a remote cache) like a
// Django view. When the queue is full the request is answered at once with 503 and Retry-After:
// under overload, a bounded queue keeps latency bounded and tells the client to come back,
// instead of queueing without limit until every request times out.
//
// The page-cache fast path. When the matched route's handler is a CachedHandler whose page cache
// lives in process (PageCache::fetch_is_local()) and no middleware is installed, the io thread
// calls page_cache->fetch() itself and writes a hit directly — no hop to the pool, and the body is
// written from the stored bytes without a copy. A miss goes to the pool as usual. With middleware
// installed every request goes through the pool, because middleware must see every response.
//
// Limits and timeouts. A request header larger than max_header_bytes is answered 431, a body
// larger than max_body_bytes 413 (both then close the connection). A connection idle between
// requests for idle_timeout is closed; one that started a request and has not finished sending
// it within read_timeout gets 408 and is closed, so a slow client holds no thread and only a
// bounded time. Timeouts are checked by a periodic sweep (resolution: 1/8 of the smallest
// timeout, at least 5 ms) instead of a timer per operation, which keeps the per-request cost low.
//
// Hostile clients. max_header_bytes is one budget per request for everything that is not body:
// the head, every chunk-size line with its extensions, and the trailer (431 past it). The head
// must arrive within header_timeout of the request's first byte (408). Framing follows RFC 9112
// §6 so that a proxy in front and this server agree on where a request ends: a
// Transfer-Encoding other than a lone "chunked" is 501; Transfer-Encoding with Content-Length,
// duplicate Transfer-Encoding or Content-Length, a signed or list-valued Content-Length,
// Transfer-Encoding in HTTP/1.0, and a missing (HTTP/1.1) or duplicate Host are 400; all close
// the connection. Trailer fields never reach request.headers. A Host not in allowed_hosts gets
// 400 before routing and caching. Beyond max_connections open connections a new one gets 503
// and is closed; after max_requests_per_connection responses a connection is closed. The
// metrics endpoint answers only metrics_allowed_clients (others reach the router: 404).
//
// Shutdown (stop(), or SIGINT/SIGTERM under run()): stop accepting, close idle keep-alive
// connections, let in-flight requests finish (their responses carry Connection: close), and
// after shutdown_timeout close whatever is left. stop() then waits for handlers still running
// on the pool: a handler that never returns blocks it.
//
// Every response carries X-Request-Id (the client's, when it sent a sane one, else a generated
// one, also in request.request_id). The access log goes to the spdlog logger "cachekit.access"
// (created on stderr unless the application registered one) at info level, one line per request;
// access_log = false turns it off at no cost. GET /metrics (metrics_path) answers the
// Prometheus text of metrics.h.
//
// Thread-safety: configure (router(), use(), watch_cache()) before start(); then stop(),
// request_stop(), port(), stats() and metrics_text() may be called from any thread. The server
// must outlive nothing that it serves: stop() (or the destructor) before destroying caches.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cachekit/http/handler.h"
#include "cachekit/server/metrics.h"
#include "cachekit/server/router.h"

namespace cachekit {
class Cache;
}

namespace cachekit::server {

struct ServerOptions {
  std::string address = "127.0.0.1";    // an IPv4 or IPv6 literal; "0.0.0.0" listens everywhere
  std::uint16_t port = 8000;            // 0: an ephemeral port (read it back with port())
  std::size_t io_threads = 0;           // 0: one per core
  std::size_t handler_threads = 0;      // 0: 4 per core (handlers may block)
  std::size_t handler_queue = 1024;     // requests waiting for a handler thread; more → 503
  std::chrono::seconds retry_after{1};  // the Retry-After of a 503
  std::size_t max_header_bytes = 16 * 1024;         // request line + header fields → else 431
  std::size_t max_body_bytes = 1024 * 1024;         // → else 413
  std::chrono::milliseconds read_timeout{10'000};   // to finish sending a started request → 408
  std::chrono::milliseconds idle_timeout{60'000};   // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{10'000};  // to take a response
  std::chrono::milliseconds shutdown_timeout{10'000};
  // Hostile clients (see "Hostile clients" above).
  std::chrono::milliseconds header_timeout{10'000};  // first byte to end of the head → 408
  std::size_t max_connections = 0;  // 0: from RLIMIT_NOFILE (see above); more → 503
  std::size_t max_requests_per_connection = 1000;  // then Connection: close; 0: no limit
  // Host names this site answers (Django's ALLOWED_HOSTS): "www.example.com", ".example.com"
  // (the domain and every subdomain), "*" (any). A request whose Host (port ignored) matches
  // none gets 400 before routing or caching. Empty: loopback names only (development).
  std::vector<std::string> allowed_hosts{};
  bool access_log = true;
  std::string metrics_path = "/metrics";  // "" disables the endpoint
  // Client addresses that may read metrics_path; others get 404. IP literals, "loopback"
  // (127.0.0.0/8, ::1 and their IPv4-mapped forms) or "*" (everyone).
  std::vector<std::string> metrics_allowed_clients{"loopback"};
  RouterOptions router{};
};

// Counts since start (monotonic) and current levels.
struct ServerStats {
  std::uint64_t requests = 0;               // answered
  std::uint64_t answered_on_io_thread = 0;  // page-cache hits, router answers, /metrics
  std::uint64_t dispatched_to_pool = 0;     // handed to the handler pool
  std::uint64_t rejected_by_pool = 0;       // answered 503 because the queue was full
  std::size_t connections = 0;              // open now
  std::size_t pool_queued = 0;              // waiting for a handler thread now
  std::size_t pool_busy = 0;                // handler threads running a request now
};

class Server {
 public:
  explicit Server(ServerOptions options = {});
  ~Server();  // stop()s if running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // The routes; register before start().
  [[nodiscard]] Router& router() noexcept;
  // router().use(middleware).
  Server& use(http::Middleware middleware);
  // Exposes `cache`'s backend errors in /metrics under `alias`. `cache` must outlive the server.
  Server& watch_cache(std::string alias, const Cache& cache);
  // Appends `source()`'s text to every /metrics answer: whole Prometheus families (# HELP,
  // # TYPE, samples with the caller's own labels, each line ending in a newline), such as a
  // RefreshScheduler's metrics_text(). Register before start(); `source` is called on an io
  // thread for each scrape, so it must be cheap, thread-safe and must not throw.
  Server& add_metrics_text(std::function<std::string()> source);

  // Binds, listens and starts the threads; returns at once. Throws std::system_error when the
  // address cannot be bound (a startup error) and std::logic_error when already started.
  void start();
  // start() (unless started), then blocks until SIGINT or SIGTERM arrives or request_stop() is
  // called, then stops gracefully. Returns after the stop. `ready`, when given, is called once
  // the server listens and handles the signals (e.g. to print port()).
  void run(const std::function<void(Server&)>& ready = {});
  // Asks run() to return; safe from any thread, including a handler. No-op when not running.
  void request_stop() noexcept;
  // Graceful stop as described above; blocks until done. Idempotent; must not be called from a
  // handler or an io thread (use request_stop() there).
  void stop();

  // The bound port (after start(); 0 before).
  [[nodiscard]] std::uint16_t port() const noexcept;
  [[nodiscard]] ServerStats stats() const noexcept;
  [[nodiscard]] const Metrics& metrics() const;  // after start()
  // The /metrics text.
  [[nodiscard]] std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachekit::server
