#pragma once
// The page cache's storage rules: may a shared cache store this response, and for how long?
// RFC 9111 §3 and §4.2 for a shared cache, with Django's cache_page timeout on top and
// Django's unsafe defaults fixed. Checked in this order (the first failing rule is the reason):
//
//   method      the request method is GET or HEAD
//   status      final, understood and not 5xx: never 1xx, 206 (no ranges here), 304, 5xx
//   no-store    Cache-Control: no-store                  (Django stores it)
//   private     Cache-Control: private, any form
//   no-cache    Cache-Control: no-cache, any form: "not served without revalidation" — this
//               cache does not revalidate, so it does not store
//   set-cookie  the response sets a cookie               (Django stores it without Vary: Cookie)
//   vary-star   Vary: *, or a Vary member that is not a field name   (Django stores it)
//   authorization  the request had Authorization and the response is neither `public` nor has
//               s-maxage (stricter than RFC 9111 §3.5, where must-revalidate also allows it)
//   zero-lifetime  s-maxage (else max-age) is 0, or Expires is not after Date
//   no-freshness   no lifetime: a status other than 200 needs explicit freshness (s-maxage,
//               max-age, Expires) — or, for the heuristically cacheable 203, 204, 300, 301,
//               308, 404, 405, 410, 414, a cache_page timeout. 200 falls back to the default.
//
// Lifetime: the cache_page timeout, else s-maxage, max-age, Expires − Date (Date absent: −
// now), else (200 only) the default timeout. Request Cache-Control directives are ignored (as
// Varnish does): a client cannot force a miss or opt a page out for others.
//
// Pure functions; thread-safe.

#include <algorithm>
#include <chrono>
#include <optional>
#include <string_view>

#include "cachekit/clock.h"
#include "cachekit/http/message.h"

namespace cachekit::http {

struct StoreDecision {
  bool store = false;
  // Why not (the Cache-Status `detail` token, one of the names above), or "" when stored.
  std::string_view reason;
  // How long the entry stays fresh from now (when store is true).
  std::chrono::milliseconds lifetime{0};
};

struct FreshnessOptions {
  std::optional<std::chrono::seconds> page_timeout{};  // cache_page's timeout
  std::chrono::seconds default_timeout{600};           // for a 200 with no freshness
  // Reverse-proxy rules (PageCacheOptions::reverse_proxy): heuristic freshness from
  // Last-Modified, default_timeout 0 meaning "not stored", and a response with a validator
  // stored with a zero lifetime (to be revalidated) when it is no-cache or has no lifetime.
  bool reverse_proxy = false;
};

// May `response` (to `request`) be stored by a shared cache, and for how long (from `now`)?
[[nodiscard]] StoreDecision storability(const Request& request, const Response& response,
                                        const FreshnessOptions& options, TimePoint now);

// True when a request with these headers may be answered with `stored`, as far as the shared-
// cache rules go: a request carrying Authorization only gets a `public` or `s-maxage` response
// — or, for a reverse proxy (RFC 9111 §3.5 as written), a `must-revalidate` one too.
[[nodiscard]] bool authorization_allows(const Request& request, const Response& stored,
                                        bool reverse_proxy = false);

// ---- serving a stale response (RFC 5861) ----

// How long past its freshness a stored response may still be served: while one refresh runs
// in the background (stale-while-revalidate), and in place of an error (stale-if-error).
struct StaleWindows {
  std::chrono::milliseconds while_revalidate{0};
  std::chrono::milliseconds if_error{0};
  [[nodiscard]] std::chrono::milliseconds longest() const noexcept {
    return std::max(while_revalidate, if_error);
  }
};

// The stale windows of a response about to be stored: each is the larger of its Cache-Control
// directive (`stale-while-revalidate=N`, `stale-if-error=N`; malformed counts as absent) and the
// page cache's own setting. Both are 0 — never served stale — when the response says
// `must-revalidate`, `proxy-revalidate` or `s-maxage` (RFC 9111 §5.2.2.2, §5.2.2.8, and
// §5.2.2.10: s-maxage implies proxy-revalidate for a shared cache), or `no-cache`.
[[nodiscard]] StaleWindows stale_windows(const Response& response,
                                         std::chrono::seconds while_revalidate,
                                         std::chrono::seconds if_error);

// False when the request's own directives forbid a stale answer (RFC 9111 §5.2.1): `no-cache`;
// `max-age=N` or `min-fresh=N` without `max-stale` ("the client does not wish to receive a
// stale response"; a `max-stale` of any value is taken as accepting the page's own window);
// `Pragma: no-cache` when there is no Cache-Control (§5.4). Such a request goes forward like a
// miss, and if the origin then fails it gets the error. These directives never force a miss on a
// FRESH page (see above: request directives are ignored for hits).
[[nodiscard]] bool request_accepts_stale(const Request& request);

// True for GET and HEAD.
[[nodiscard]] bool is_cacheable_method(std::string_view method) noexcept;
// True for every method but GET, HEAD, OPTIONS and TRACE: POST, PUT, PATCH, DELETE and any
// extension method (a success invalidates the URI's pages, RFC 9111 §4.4).
[[nodiscard]] bool is_unsafe_method(std::string_view method) noexcept;
// True for statuses RFC 9110 §15.1 lets a cache store without explicit freshness (5xx
// excluded here).
[[nodiscard]] bool is_heuristically_cacheable(int status) noexcept;

}  // namespace cachekit::http
