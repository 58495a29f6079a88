// RFC 9111 storage and freshness rules for a shared cache (the table is in cache_policy.h).
//
// Where the RFC lets a cache choose, this one chooses the safer way, as nginx, Varnish and
// Fastly do: Set-Cookie and any form of private / no-cache prevent storing (the RFC would let
// a cache store them with fields stripped or with revalidation, which this cache does not
// do), and a malformed or repeated freshness directive counts against storing rather than for.

#include "cachekit/http/cache_policy.h"

#include <algorithm>

#include "cachekit/http/cache_control.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31 seconds.
constexpr std::int64_t kMaxDeltaSeconds = std::int64_t{1} << 31;

struct ResponseDirectives {
  bool no_store = false, is_private = false, no_cache = false, is_public = false;
  // Present but malformed (not delta-seconds) counts as 0: "stale", never a long lifetime.
  std::optional<std::int64_t> max_age, s_maxage;
};

std::int64_t delta_or_zero(const std::optional<std::string>& value) {
  if (!value) return 0;
  auto v = detail::parse_delta_seconds(detail::unquote(*value));
  return v ? std::min(*v, kMaxDeltaSeconds) : 0;
}

ResponseDirectives directives_of(const Response& response) {
  ResponseDirectives d;
  for (const CacheDirective& cd :
       parse_cache_control(detail::joined(response.headers, "Cache-Control"))) {
    const std::string& n = cd.name;
    if (n == "no-store") d.no_store = true;
    if (n == "private") d.is_private = true;
    if (n == "no-cache") d.no_cache = true;
    if (n == "public") d.is_public = true;
    // RFC 9111 §4.2.1: with repeated directives use the first (or treat as stale).
    if (n == "max-age" && !d.max_age) d.max_age = delta_or_zero(cd.value);
    if (n == "s-maxage" && !d.s_maxage) d.s_maxage = delta_or_zero(cd.value);
  }
  return d;
}

// s-maxage, max-age, then Expires − Date (Date absent: − now). An unparsable Expires is in
// the past (RFC 9111 §5.3). nullopt when the response gives no explicit freshness.
std::optional<milliseconds> explicit_lifetime(const Response& response, const ResponseDirectives& d,
                                              TimePoint now) {
  if (d.s_maxage) return seconds(*d.s_maxage);
  if (d.max_age) return seconds(*d.max_age);
  auto expires_field = response.headers.get("Expires");
  if (!expires_field) return std::nullopt;
  auto expires = parse_http_date(detail::trim(*expires_field));
  if (!expires) return milliseconds(0);
  TimePoint date = now;
  if (auto date_field = response.headers.get("Date")) {
    if (auto parsed = parse_http_date(detail::trim(*date_field))) date = *parsed;
  }
  return std::max(milliseconds(0), *expires - date);
}

bool status_is_storable(int status) noexcept {
  if (status < 200 || status > 499) return false;  // 1xx is not final; never 5xx
  return status != 206 && status != 304;           // no ranges; a 304 completes nothing
}

StoreDecision refuse(std::string_view reason) { return StoreDecision{false, reason, {}}; }

}  // namespace

bool is_cacheable_method(std::string_view method) noexcept {
  return method == "GET" || method == "HEAD";
}

bool is_unsafe_method(std::string_view method) noexcept {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

bool is_heuristically_cacheable(int status) noexcept {
  switch (status) {
    case 200:
    case 203:
    case 204:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
      return true;
    default:
      return false;
  }
}

bool authorization_allows(const Request& request, const Response& stored) {
  if (!request.headers.contains("Authorization")) return true;
  ResponseDirectives d = directives_of(stored);
  return d.is_public || d.s_maxage.has_value();
}

StoreDecision storability(const Request& request, const Response& response,
                          const FreshnessOptions& options, TimePoint now) {
  if (!is_cacheable_method(request.method)) return refuse("method");
  if (!status_is_storable(response.status)) return refuse("status");
  ResponseDirectives d = directives_of(response);
  if (d.no_store) return refuse("no-store");
  if (d.is_private) return refuse("private");
  if (d.no_cache) return refuse("no-cache");
  if (response.headers.contains("Set-Cookie")) return refuse("set-cookie");
  std::vector<std::string> vary = vary_header_list(response);
  if (!vary.empty() && vary.front() == "*") return refuse("vary-star");
  if (!authorization_allows(request, response)) return refuse("authorization");

  std::optional<milliseconds> explicit_life = explicit_lifetime(response, d, now);
  if (explicit_life && explicit_life->count() <= 0) return refuse("zero-lifetime");
  milliseconds lifetime{0};
  if (options.page_timeout) {
    if (response.status != 200 && !explicit_life && !is_heuristically_cacheable(response.status)) {
      return refuse("no-freshness");
    }
    lifetime = *options.page_timeout;
  } else if (explicit_life) {
    lifetime = *explicit_life;
  } else if (response.status == 200) {
    lifetime = options.default_timeout;
  } else {
    return refuse("no-freshness");
  }
  lifetime = std::min<milliseconds>(lifetime, seconds(kMaxDeltaSeconds));
  if (lifetime.count() <= 0) return refuse("zero-lifetime");
  return StoreDecision{true, "", lifetime};
}

}  // namespace cachekit::http
