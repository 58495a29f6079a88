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

// The token this cache answers to in a targeted Surrogate-Control directive.
constexpr std::string_view kSurrogateTarget = "cachekit";

// RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31 seconds.
constexpr std::int64_t kMaxDeltaSeconds = std::int64_t{1} << 31;

struct ResponseDirectives {
  bool no_store = false, is_private = false, no_cache = false, is_public = false,
       must_revalidate = false;
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
    if (n == "must-revalidate") d.must_revalidate = true;
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

// Surrogate-Control (W3C Edge Architecture): what the origin tells surrogates — caches it
// runs, like this proxy — over Cache-Control. A directive applies when it names no target or
// names kSurrogateTarget ("max-age=60;cachekit"). Malformed directives are ignored.
struct SurrogateDirectives {
  bool no_store = false;
  std::optional<std::int64_t> max_age;
};

SurrogateDirectives surrogate_directives(const Response& response) {
  SurrogateDirectives sc;
  std::string value = detail::joined(response.headers, "Surrogate-Control");
  for (std::string_view member : detail::split_list(value)) {
    auto semicolon = member.find(';');
    if (semicolon != std::string_view::npos) {
      if (!iequals(detail::trim(member.substr(semicolon + 1)), kSurrogateTarget)) {
        continue;
      }
      member = member.substr(0, semicolon);
    }
    auto equals = member.find('=');
    std::string name = detail::lower(member.substr(0, equals));
    if (name == "no-store" && equals == std::string_view::npos) sc.no_store = true;
    if (name == "max-age" && equals != std::string_view::npos && !sc.max_age) {
      auto seconds = detail::parse_delta_seconds(member.substr(equals + 1));
      if (seconds) sc.max_age = std::min(*seconds, kMaxDeltaSeconds);
    }
  }
  return sc;
}

// RFC 9111 §4.2.2: a tenth of the time since Last-Modified, for a heuristically cacheable
// status or a `public` response; nullopt when there is no usable Last-Modified.
std::optional<milliseconds> heuristic_lifetime(const Response& response,
                                               const ResponseDirectives& d, TimePoint now) {
  if (!is_heuristically_cacheable(response.status) && response.status != 501 && !d.is_public) {
    return std::nullopt;
  }
  auto field = response.headers.get("Last-Modified");
  if (!field) return std::nullopt;
  auto modified = parse_http_date(detail::trim(*field));
  if (!modified) return std::nullopt;
  TimePoint date = now;
  if (auto date_field = response.headers.get("Date")) {
    if (auto parsed = parse_http_date(detail::trim(*date_field))) date = *parsed;
  }
  if (date <= *modified) return std::nullopt;
  return std::chrono::duration_cast<milliseconds>(date - *modified) / 10;
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
  // RFC 9111 §4.4: every method not known to be safe, extension methods included.
  return method != "GET" && method != "HEAD" && method != "OPTIONS" && method != "TRACE";
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

bool authorization_allows(const Request& request, const Response& stored, bool reverse_proxy) {
  if (!request.headers.contains("Authorization")) return true;
  ResponseDirectives d = directives_of(stored);
  return d.is_public || d.s_maxage.has_value() || (reverse_proxy && d.must_revalidate);
}

StoreDecision storability(const Request& request, const Response& response,
                          const FreshnessOptions& options, TimePoint now) {
  if (!is_cacheable_method(request.method)) return refuse("method");
  // A reverse proxy stores a 5xx too when the origin gave it explicit freshness (or, for 501,
  // a Last-Modified: RFC 9110 §15.1 lists it as heuristically cacheable); checked below.
  // Only the 5xx codes RFC 9110 defines: an unknown one (599) may mean anything.
  const bool server_error = response.status >= 500 && response.status <= 505;
  if (!status_is_storable(response.status) && !(options.reverse_proxy && server_error)) {
    return refuse("status");
  }
  ResponseDirectives d = directives_of(response);
  // A reverse proxy is a surrogate: Surrogate-Control aimed at it wins over Cache-Control.
  std::optional<milliseconds> surrogate_life;
  if (options.reverse_proxy && response.headers.contains("Surrogate-Control")) {
    SurrogateDirectives sc = surrogate_directives(response);
    if (sc.no_store) return refuse("no-store");
    if (sc.max_age) {
      surrogate_life = seconds(*sc.max_age);
      d.no_store = d.no_cache = false;
    }
  }
  if (d.no_store) return refuse("no-store");
  if (d.is_private) return refuse("private");
  const bool validator =
      response.headers.contains("ETag") || response.headers.contains("Last-Modified");
  // A reverse proxy revalidates: a no-cache response with a validator is stored stale.
  const bool revalidate_only = options.reverse_proxy && validator;
  if (d.no_cache && !revalidate_only) return refuse("no-cache");
  if (response.headers.contains("Set-Cookie")) return refuse("set-cookie");
  std::vector<std::string> vary = vary_header_list(response);
  if (!vary.empty() && vary.front() == "*") return refuse("vary-star");
  if (!authorization_allows(request, response, options.reverse_proxy)) {
    return refuse("authorization");
  }

  std::optional<milliseconds> explicit_life =
      surrogate_life ? surrogate_life : explicit_lifetime(response, d, now);
  if (server_error && !explicit_life && response.status != 501) return refuse("status");
  if (d.no_cache || (explicit_life && explicit_life->count() <= 0)) {
    if (revalidate_only) return StoreDecision{true, "", milliseconds(0)};
    return refuse("zero-lifetime");
  }
  milliseconds lifetime{0};
  if (options.reverse_proxy && !explicit_life) {
    auto heuristic = heuristic_lifetime(response, d, now);
    if (heuristic) {
      lifetime = *heuristic;
    } else if (response.status == 200 && options.default_timeout.count() > 0) {
      lifetime = options.default_timeout;
    } else {
      return refuse("no-freshness");
    }
  } else if (options.page_timeout) {
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
