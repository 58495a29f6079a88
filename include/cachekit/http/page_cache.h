#pragma once
// The page cache: whole HTTP responses stored in a cachekit Cache, following RFC 9111's rules
// for a shared cache and Django's key scheme (so Django's published key vectors hold).
//
//   router.get("/playground/hello/", cache_page(5min, hello, {.cache = &caches["default"]}));
//
// What is stored (cache_policy.h has the full table): GET/HEAD responses that are not 5xx,
// carry no Set-Cookie, no `private`, no `no-store`, no `no-cache`, no `Vary: *`, and — when
// the request had Authorization — only if the response is explicitly `public` or has
// `s-maxage`. A 200 is stored for the cache_page timeout, else s-maxage, max-age, Expires,
// else default_timeout; other cacheable statuses need explicit freshness (or, for the
// heuristically cacheable ones such as 404, a cache_page timeout). Keys: cache_key.h (the
// Host header is validated first; a request with a bad Host is never cached). When the
// handler read the request's Cookie (Request::cookies_read()), `Vary: Cookie` is added to its
// response first, so a page built from one user's cookie is never served to another.
//
// On the way out a stored response is patched as Django does (Expires if absent, max-age =
// min(its own, the lifetime)) and gets a strong ETag (a hash of the body) when it has none.
//
// A hit carries `Age` and a `Cache-Status` member (RFC 9211) appended to any upstream ones.
// The exact members this cache emits:
//   cachekit; hit; ttl=N                        a fresh stored response (also on its 304/412)
//   cachekit; fwd=uri-miss; stored; ttl=N       nothing stored for the URI; now stored
//   cachekit; fwd=miss; stored; ttl=N           the URI is known, this variant was not stored
//   cachekit; fwd=vary-miss; stored; ttl=N      the variant key matched another request's
//                                               header values (checked on every hit)
//   cachekit; fwd=stale; stored; ttl=N          the stored response had expired
//   cachekit; hit; detail=stale-while-revalidate; ttl=-N
//                                               an expired response inside its
//                                               stale-while-revalidate window, served at
//                                               once; one refresh runs in the background
//                                               (RFC 9211 §2.2: a negative ttl is stale)
//   cachekit; fwd=stale; fwd-status=S; detail=stale-if-error; ttl=-N
//                                               the handler answered S (5xx) or threw (no
//                                               fwd-status): the expired response, inside
//                                               its stale-if-error window, replaced it
//   cachekit; fwd=request; ...                  a stored response exists but this request
//                                               (Authorization) may not use it
//   cachekit; fwd=<reason>; detail=<why>        not stored: why is one of no-store, private,
//                                               no-cache, set-cookie, vary-star, authorization,
//                                               status, zero-lifetime, no-freshness, size
//   cachekit; fwd=<reason>; collapsed           answered with a concurrent miss's response
//   cachekit; fwd=method                        not GET/HEAD (POST...)
//   cachekit; fwd=method; detail=invalidated    ...and its success removed the URI's pages
//   cachekit; fwd=bypass; detail=invalid-host   the request cannot be keyed (bad scheme/Host)
// A store that fails (the backend is down) simply does not add `stored`.
//
// A conditional request (If-None-Match / If-Modified-Since) on a fresh 2xx entry is answered
// 304 from the entry (If-Match / If-Unmodified-Since failures: 412). HEAD is served from a
// cached GET (no body, Content-Length of the GET body). A hit does no heap allocation
// proportional to the body: the Response's body Bytes views the stored value itself (for an
// in-process store, the very bytes the store holds).
//
// Concurrent misses for one page in this process are coalesced: one handler call, the others
// wait (up to coalesce_wait) and get a copy of its response sharing the body. Only a response
// that could be stored is shared, and only with a request whose Vary-selected headers are the
// same and whose Authorization the response allows; otherwise — and when the leader throws or
// is too slow — each waiter runs the handler itself. A URI whose response was not shareable is
// not coalesced again for 30 s (Varnish's hit-for-pass), so private pages never queue. Flights
// and passes are per request class — with Authorization, with a Cookie, with neither — so a
// private answer to a logged-in user leaves anonymous misses coalescing.
//
// Serving stale (RFC 5861). An entry keeps two windows past its freshness: stale-while-
// revalidate and stale-if-error, each the larger of the response's Cache-Control directive and
// this PageCache's option (cache_policy.h: stale_windows); the store keeps the entry until the
// end of the longer one. Never for a response with must-revalidate, proxy-revalidate,
// s-maxage or no-cache, nor for a request whose Cache-Control forbids stale (no-cache,
// max-age / min-fresh without max-stale: request_accepts_stale). Inside the swr window a
// request gets the stale page at once and one refresh runs in the background: one per page in
// this process (a bounded executor owned by the PageCache, joined by its destructor), and on
// a store shared by processes (backend_info().outlives_process) one per fleet, through a
// cachekit::Lease. A refresh that fails (throws, 5xx) stores nothing and is counted; the stale
// page goes on being served. Inside the sie window, a handler that throws or answers 5xx is
// replaced by the stale page; past it the error goes through as before.
//
// A store failure never changes a response: the handler runs and its response is returned;
// a corrupt stored entry is a miss. Nothing here throws except what the handler throws.
// Thread-safe: one PageCache serves any number of threads.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/cache.h"
#include "cachekit/clock.h"
#include "cachekit/http/handler.h"
#include "cachekit/http/message.h"

namespace cachekit::http {

struct PageCacheOptions {
  Cache* cache = nullptr;    // required; must outlive the PageCache
  std::string key_prefix{};  // Django's key_prefix / CACHE_MIDDLEWARE_KEY_PREFIX
  // cache_page's timeout: the entry lives this long whatever the response says.
  std::optional<std::chrono::seconds> page_timeout{};
  // Used when there is no page_timeout and the response gives no freshness (Django's
  // CACHE_MIDDLEWARE_SECONDS).
  std::chrono::seconds default_timeout{600};
  // How long a request waits for a concurrent miss of the same page before running the
  // handler itself.
  std::chrono::milliseconds coalesce_wait{5000};
  const Clock* clock = nullptr;  // nullptr: SystemClock
  // Django's ALLOWED_HOSTS for keying (see KeyOptions in cache_key.h); empty: any valid host.
  std::vector<std::string> allowed_hosts{};
  // RFC 5861 windows for every stored response (the response's own directives win when
  // larger): how long past freshness a page is served while one background refresh runs, and
  // how long it stands in for a failing handler. 0: only what the response asks for.
  std::chrono::seconds stale_while_revalidate{0};
  std::chrono::seconds stale_if_error{0};
  // Reverse-proxy mode (`cachekit proxy`): the handler forwards to an origin, whose headers
  // rule. Stored responses are kept as the origin sent them (no ETag, Expires or max-age
  // added; Date only when absent). Freshness is s-maxage, max-age or Expires, else — for a
  // heuristically cacheable status or a `public` response with Last-Modified — 10 % of the
  // time since Last-Modified (RFC 9111 §4.2.2), else default_timeout for a 200 when it is not
  // 0, else nothing is stored. The age a response arrives with is the larger of its Age and
  // now − Date (§4.2.3). A response with a validator (ETag, Last-Modified) is stored even when
  // it is `no-cache` or already stale, and kept keep_validated past its freshness: an expired
  // entry is then revalidated — the forwarded request carries If-None-Match /
  // If-Modified-Since, and a 304 freshens the stored headers (§4.3.4) instead of
  // transferring the body again. A miss is forwarded without the client's own
  // preconditions (unless it asks for a Range), and HEAD goes forward as GET, so that what
  // comes back can be stored; the client's preconditions are then evaluated on it.
  bool reverse_proxy = false;
  std::chrono::seconds keep_validated{3600};
  // A response whose body is larger is not stored (`detail=size`); 0: no limit.
  std::size_t max_body_bytes = 0;
};

// What the page cache did beyond hits and misses, counted since it was made.
struct PageCacheStats {
  std::uint64_t stale_while_revalidate = 0;  // stale pages served while refreshing
  std::uint64_t stale_if_error = 0;          // stale pages served in place of an error
  std::uint64_t refreshes = 0;               // background refreshes that stored a page
  std::uint64_t refresh_failures = 0;        // ...that threw or answered 5xx
  std::uint64_t refresh_skipped = 0;         // ...left to another process holding the lease
  std::uint64_t fleet_collapsed = 0;         // misses served another process's stored page
  std::uint64_t revalidated = 0;             // expired entries the origin confirmed with 304
};

class PageCache {
 public:
  // Throws std::invalid_argument when options.cache is null (a startup configuration error).
  explicit PageCache(PageCacheOptions options);
  ~PageCache();
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  // A fresh stored response for `request` — with Age and Cache-Status: hit, or a 304/412 when
  // the request's preconditions say so — or nullopt: a miss, a request that is not GET/HEAD
  // or cannot be keyed, or a store that failed. Never throws.
  [[nodiscard]] std::optional<Response> fetch(const Request& request) const;
  // fetch(), keeping a miss's lookup on the request (Request::page_lookup; reset otherwise) so
  // that serve(request, ...) on this PageCache reads the store no more than it must: a server
  // that tried fetch on its io thread hands the request on to serve() on a handler thread.
  [[nodiscard]] std::optional<Response> fetch_and_keep(Request& request) const;
  // Stores `response` when the rules allow, patching it as stored (ETag when absent, Expires,
  // max-age) and appending its Cache-Status member (stored, or why not) either way. For a
  // successful (2xx/3xx) POST/PUT/PATCH/DELETE, invalidates the request URI's pages instead:
  // a fixed number of deletes (its header list, which makes every variant unreachable, and
  // the no-Vary pages), never a listing of the store, whatever the backend.
  // Never throws; a failed write leaves the response as it would be (without `stored`).
  void update(const Request& request, Response& response) const;
  // fetch(), else the handler — coalesced with concurrent misses of the same page — then
  // update(). Other methods: the handler, then update() (which invalidates on success).
  // A lookup kept by fetch_and_keep() for this request and this PageCache replaces the fetch.
  // Rethrows what the handler throws; nothing else. With a stale-while-revalidate window, a
  // copy of `handler` may run after this call returns, on the PageCache's refresh thread (never
  // after ~PageCache): it must own what it uses, as a cache_page handler does.
  Response serve(Request& request, const Handler& handler) const;
  // serve() for a `next` valid only during the call (a middleware chain's rest): a stale page
  // inside its stale-while-revalidate window is refreshed by one request itself, on the miss
  // path, while concurrent requests get the stale page at once.
  Response serve_chained(Request& request, const Next& next) const;

  // Removes the cached page(s) for an absolute URI `scheme://host/path?query` (the host is
  // spelled as keys spell it: lower-cased, no trailing dot, no default port; every method and
  // Vary variant: the header list goes, so no variant is reachable again, and with a backend
  // that lists keys the variants themselves are erased). True if something was removed; false
  // when nothing was stored, or the store failed.
  [[nodiscard]] bool invalidate(std::string_view absolute_uri) const;
  // Removes every page this PageCache stored under its key_prefix, through the backend's
  // keys(); returns how many pages. 0 (and a log line) when the backend cannot list keys.
  [[nodiscard]] std::size_t invalidate_all() const;

  [[nodiscard]] PageCacheStats stats() const noexcept;
  // Background refreshes queued or running now.
  [[nodiscard]] std::size_t refreshes_pending() const;

  // How many requests are waiting right now for a concurrent miss's response (a gauge).
  [[nodiscard]] std::size_t coalesced_waiters() const noexcept;

  // True when fetch() is cheap enough to run on a server's io thread: the Cache's backend
  // keeps entries in this process (backend_info().outlives_process is false).
  [[nodiscard]] bool fetch_is_local() const noexcept;
  // True when the backend answers some reads from process memory although it is not local (a
  // tiered store's local tier): fetch_in_process() can then answer some hits.
  [[nodiscard]] bool hits_may_be_in_process() const noexcept;
  // A hit found with in-process reads only (Cache::get_if_in_process), or nullopt — a miss,
  // a stale entry, or a read that needed the shared store — for the full path to decide.
  // Never does I/O, so a server may call it on its io thread. Keeps no lookup.
  [[nodiscard]] std::optional<Response> fetch_in_process(const Request& request) const;
  // One round trip for a hit on a shared store: the keys a lookup of `request` reads (its
  // header list, then its page), with the page's key made from the header list last read for
  // this URI — or nothing when none was (a first request: fetch() finds it). The caller reads
  // them all at once (Cache::get_many_async, on a server's io thread) and hands the values to
  // fetch_prefetched(): a hit, or nullopt — a miss, a stale entry, or a header list that names
  // other headers now — for the full path to decide. Neither does I/O; neither keeps a lookup.
  [[nodiscard]] std::vector<std::string> keys_to_prefetch(const Request& request) const;
  [[nodiscard]] std::optional<Response> fetch_prefetched(
      const Request& request, std::span<const std::string> keys,
      std::span<const std::optional<Bytes>> values) const;
  [[nodiscard]] const PageCacheOptions& options() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A handler wrapped by cache_page: calling it runs PageCache::serve. A server that knows the
// type answers hits itself (page_cache->fetch on the io thread) before dispatching `handler`.
struct CachedHandler {
  Handler handler;
  std::shared_ptr<const PageCache> page_cache;
  Response operator()(Request& request) const { return page_cache->serve(request, handler); }
};

struct CachePageOptions {
  Cache* cache = nullptr;  // required; must outlive the returned handler
  std::string key_prefix{};
  std::vector<std::string> allowed_hosts{};        // as PageCacheOptions::allowed_hosts
  std::chrono::seconds stale_while_revalidate{0};  // as PageCacheOptions
  std::chrono::seconds stale_if_error{0};          // as PageCacheOptions
};

// Django's cache_page(timeout, cache=..., key_prefix=...): the page lives `timeout` whatever
// the response says (the emitted max-age is the smaller of the two). Throws
// std::invalid_argument when options.cache is null (a startup configuration error).
[[nodiscard]] CachedHandler cache_page(std::chrono::seconds timeout, Handler handler,
                                       CachePageOptions options);

// The site-wide cache middleware (Django's UpdateCacheMiddleware + FetchFromCacheMiddleware
// in one): put it FIRST in the chain so it sees the Vary headers every other middleware adds.
// A hit short-circuits the rest of the chain; a miss runs it (coalesced) and stores the
// result. Throws std::invalid_argument when options.cache is null.
[[nodiscard]] Middleware cache_middleware(PageCacheOptions options);

}  // namespace cachekit::http
