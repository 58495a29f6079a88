#pragma once
// Django's response-header helpers (django.utils.cache and django.views.decorators) in C++:
// Cache-Control merging, Vary, Expires, "never cache", conditional requests (304 / 412), and
// the decorator-style wrappers that apply them to a Handler's response.
//
//   Handler h = cache_control({{"max-age", 60}, {"public"}}, vary_on_cookie(my_view));
//
// The page-cache keys (get_cache_key / learn_cache_key) live in cache_key.h, included here.
// Every function is a pure function of its arguments (plus the clock given): safe to call
// from many threads on different Responses; a Response itself is not synchronised.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/clock.h"
#include "cachekit/http/cache_key.h"
#include "cachekit/http/handler.h"
#include "cachekit/http/message.h"

namespace cachekit::http {

// One Cache-Control directive: a bare flag (`public`) or `name=value` (`max-age=60`).
// Names compare case-insensitively; `_` is accepted for `-` (Django's keyword spelling).
struct CacheDirective {
  std::string name;
  std::optional<std::string> value;  // nullopt: a flag

  CacheDirective(std::string flag) : name(std::move(flag)) {}  // NOLINT: {"public"}
  CacheDirective(std::string n, std::string v) : name(std::move(n)), value(std::move(v)) {}
  CacheDirective(std::string n, const char* v) : name(std::move(n)), value(std::string(v)) {}
  CacheDirective(std::string n, std::int64_t seconds)
      : name(std::move(n)), value(std::to_string(seconds)) {}
  CacheDirective(std::string n, int seconds)
      : CacheDirective(std::move(n), std::int64_t{seconds}) {}
  CacheDirective(std::string n, std::chrono::seconds s) : CacheDirective(std::move(n), s.count()) {}

  friend bool operator==(const CacheDirective&, const CacheDirective&) = default;
};
using CacheDirectives = std::vector<CacheDirective>;

// The directives of a Cache-Control value, in order: comma-separated (commas inside a quoted
// value do not split), whitespace-tolerant, names lower-cased, values as written (quotes
// kept, so patch_cache_control round-trips them). Empty members are skipped; never fails.
[[nodiscard]] CacheDirectives parse_cache_control(std::string_view value);

// Merges `directives` into the response's Cache-Control as Django does: an existing and a new
// max-age keep the smaller; `public` and `private` exclude each other (the new one wins);
// `no-cache` accumulates field names (`no-cache=Set-Cookie, no-cache=Link`) but a bare
// `no-cache` replaces them; any other directive is replaced. Joined with ", ".
void patch_cache_control(Response& response, const CacheDirectives& directives);

// The integer max-age of the response's Cache-Control, or nullopt when absent or not an
// integer.
[[nodiscard]] std::optional<std::int64_t> get_max_age(const Response& response);

// Django's patch_response_headers: sets Expires = now + timeout unless Expires is already
// set, and patches max-age=timeout (the smaller max-age wins). A negative timeout counts as 0.
void patch_response_headers(Response& response,
                            std::chrono::seconds timeout = std::chrono::seconds(600),
                            const Clock& clock = SystemClock::instance());

// Expires = now and `Cache-Control: max-age=0, no-cache, no-store, must-revalidate, private`.
void add_never_cache_headers(Response& response, const Clock& clock = SystemClock::instance());

// Appends the names to Vary that it does not list yet (case-insensitive), keeping order and
// spelling; when `*` is listed anywhere the result is exactly `*`.
void patch_vary_headers(Response& response, std::initializer_list<std::string_view> names);
void patch_vary_headers(Response& response, const std::vector<std::string>& names);
// True when the response's Vary lists `name` (case-insensitive).
[[nodiscard]] bool has_vary_header(const Response& response, std::string_view name);

// ---- decorators: each returns a Handler that calls `handler` and patches its response ----

// `clock` must outlive the returned handler.
[[nodiscard]] Handler never_cache(Handler handler, const Clock& clock = SystemClock::instance());
[[nodiscard]] Handler cache_control(CacheDirectives directives, Handler handler);
[[nodiscard]] Handler vary_on_headers(std::vector<std::string> names, Handler handler);
[[nodiscard]] Handler vary_on_cookie(Handler handler);

// ---- HTTP dates (RFC 9110 §5.6.7) ----

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (sub-second precision dropped).
[[nodiscard]] std::string format_http_date(TimePoint t);
// An IMF-fixdate, RFC 850 or asctime date, or nullopt when `text` is none of them.
[[nodiscard]] std::optional<TimePoint> parse_http_date(std::string_view text);

// ---- conditional requests (RFC 9110 §13.2.2, as Django's get_conditional_response) ----

// The entity tags of an If-Match / If-None-Match value: {"*"} for `*`, else each well-formed
// tag (`"x"` or `W/"x"`, quotes kept); malformed members are dropped.
[[nodiscard]] std::vector<std::string> parse_etags(std::string_view value);

// Evaluates the request's preconditions against a representation with `etag` (quoted, "" when
// none) and `last_modified`: If-Match (strong compare) else If-Unmodified-Since → 412;
// If-None-Match (weak compare) → 304 for GET/HEAD, 412 otherwise; else If-Modified-Since →
// 304 for GET/HEAD. Returns the 304 / 412 response, or nullopt when the request proceeds.
// When `response` is given and is not 2xx, nothing applies (nullopt); the 304 copies its
// Cache-Control, Content-Location, Date, ETag, Expires, Last-Modified, Vary and Set-Cookie.
[[nodiscard]] std::optional<Response> get_conditional_response(
    const Request& request, std::string_view etag, std::optional<TimePoint> last_modified,
    const Response* response = nullptr);
// The same with the validators read from `response` (its ETag and Last-Modified).
[[nodiscard]] std::optional<Response> get_conditional_response(const Request& request,
                                                               const Response& response);

}  // namespace cachekit::http
