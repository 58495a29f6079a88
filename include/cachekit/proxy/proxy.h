#pragma once
// The caching reverse proxy: cachekit's page cache in front of any HTTP/1.1 origin, the way
// nginx proxy_cache or Varnish sit in front of an app.
//
//   cachekit::proxy::Upstreams origins({.origins = {"127.0.0.1:8000", "127.0.0.1:8001"}});
//   cachekit::server::Server server({.port = 8080, .allowed_hosts = {"*"}});
//   server.router().fallback(cachekit::proxy::caching_handler(origins, page_cache, {}));
//
// `cachekit proxy` (apps/cachekit) wires these together from its command line; docs/proxy.md
// has the whole story.
//
// Upstreams. Requests go to the origins round-robin, skipping those marked down. An origin is
// marked down when a connection to it fails (connect refused or timed out) or an active health
// check (GET health_path every health_interval, on a thread of its own) gets no answer or a
// 5xx; a health check that succeeds marks it up again. When every origin is down, requests
// are still tried on them in turn (a restarted origin is found at once, not at the next
// check). Idle keep-alive connections are pooled per origin; a request that could not be sent
// on a reused connection, or — when idempotent (not POST, PATCH or an extension method) — got
// no byte of answer on it, is retried once on a new one (the origin closed it while idle), and
// a connect failure moves on to the next origin. A request with no
// answer within response_timeout is answered 504; no origin reachable: 502. A body up to
// stream_above is read whole (and may be stored); a larger one — by its Content-Length, or as
// it grows when chunked — is passed to the client as it arrives (http::BodyStream), never held
// whole and never stored, each piece within response_timeout; an origin that stops mid-body
// gets the client connection closed before the body's end.
//
// Forwarding (RFC 9110 §7.6). Hop-by-hop fields are removed both ways: Connection and every
// field it names, Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and
// Proxy-Authorization / Proxy-Authenticate; the server re-frames the body. The request keeps
// its Host. X-Forwarded-For gets the client's address, X-Forwarded-Proto its scheme and
// X-Forwarded-Host its Host; a client's own X-Forwarded-* fields are dropped unless
// trust_forwarded is set (then the address is appended to its X-Forwarded-For list, and its
// -Proto and -Host are kept), because anyone can send them.
//
// Thread-safety: Upstreams::send and the handlers are called from many threads at once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cachekit/http/handler.h"
#include "cachekit/http/message.h"
#include "cachekit/http/page_cache.h"

namespace cachekit::proxy {

struct UpstreamOptions {
  std::vector<std::string> origins;  // "host:port" (an IP literal or a name resolved per connect)
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds response_timeout{30'000};  // send + the whole answer
  std::size_t max_idle_per_origin = 64;                // pooled keep-alive connections
  // A larger answer is streamed to the client as it arrives (and so never stored).
  std::size_t stream_above = std::size_t{16} * 1024 * 1024;
  std::string health_path = "/";  // "" turns active checks off
  std::chrono::milliseconds health_interval{2000};
};

// One origin as the proxy sees it (for /metrics and tests).
struct OriginState {
  std::string origin;
  bool up = true;
  std::uint64_t requests = 0;  // sent to it
  std::uint64_t failures = 0;  // connect failures, timeouts, broken answers
};

class Upstreams {
 public:
  // Throws std::invalid_argument for an empty list or an origin that is not host:port.
  explicit Upstreams(UpstreamOptions options);
  ~Upstreams();  // stops the health checks
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;

  // Sends `request` (already stripped of hop-by-hop fields) to the next origin and returns its
  // answer, or a 502 / 504 made here (with `Cache-Status: cachekit; detail=...` telling why).
  // Never throws except std::bad_alloc.
  [[nodiscard]] http::Response send(const http::Request& request);
  [[nodiscard]] std::vector<OriginState> states() const;
  // The Prometheus text of the origins' states and counts.
  [[nodiscard]] std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ProxyOptions {
  bool trust_forwarded = false;  // see "Forwarding" above
  // Client addresses allowed to send PURGE (IP literals or "loopback"); empty: PURGE is not
  // special and goes to the origin like any method. A PURGE from an allowed client removes the
  // stored pages of its URI (every variant) and is answered 200 (removed) or 404 (none).
  std::vector<std::string> purge_allowed_clients{};
};

// The request as it goes to the origin: hop-by-hop fields removed, X-Forwarded-* set.
[[nodiscard]] http::Request forwarded_request(const http::Request& request,
                                              const ProxyOptions& options);
// The origin's response as it goes to the client: hop-by-hop fields removed.
void strip_hop_by_hop(http::Headers& headers);

// The handler a proxy's router falls back to: PURGE from an allowed client, else the request
// forwarded to `upstreams` through `page_cache` (which must be in reverse_proxy mode). Both
// must outlive the handler.
[[nodiscard]] http::CachedHandler caching_handler(Upstreams& upstreams,
                                                  std::shared_ptr<const http::PageCache> page_cache,
                                                  ProxyOptions options);

}  // namespace cachekit::proxy
