// When a stored page may be served stale (RFC 5861, within RFC 9111's limits). cache_policy.h
// has the rules; this file only reads the directives.

#include <algorithm>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/cache_policy.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

// RFC 9111 §1.2.2: a delta-seconds too large to represent is 2^31 seconds.
constexpr std::int64_t kMaxDeltaSeconds = std::int64_t{1} << 31;

// A directive's delta-seconds, or 0 when it has no value or a malformed one (a window that
// cannot be read is no window: serving stale must be asked for, never guessed).
std::int64_t window_seconds(const CacheDirective& directive) {
  if (!directive.value) return 0;
  auto v = detail::parse_delta_seconds(detail::unquote(*directive.value));
  return v ? std::min(*v, kMaxDeltaSeconds) : 0;
}

}  // namespace

StaleWindows stale_windows(const Response& response, std::chrono::seconds while_revalidate,
                           std::chrono::seconds if_error) {
  std::int64_t swr = std::max<std::int64_t>(0, while_revalidate.count());
  std::int64_t sie = std::max<std::int64_t>(0, if_error.count());
  for (const CacheDirective& d :
       parse_cache_control(detail::joined(response.headers, "Cache-Control"))) {
    if (d.name == "must-revalidate" || d.name == "proxy-revalidate" || d.name == "s-maxage" ||
        d.name == "no-cache") {
      return {};
    }
    if (d.name == "stale-while-revalidate") swr = std::max(swr, window_seconds(d));
    if (d.name == "stale-if-error") sie = std::max(sie, window_seconds(d));
  }
  return {std::chrono::seconds(swr), std::chrono::seconds(sie)};
}

bool request_accepts_stale(const Request& request) {
  std::string value = detail::joined(request.headers, "Cache-Control");
  if (value.empty()) {
    std::string pragma = detail::joined(request.headers, "Pragma");
    auto members = detail::split_list(pragma);
    return std::none_of(members.begin(), members.end(),
                        [](std::string_view m) { return iequals(m, "no-cache"); });
  }
  bool max_stale = false, forbids = false;
  for (const CacheDirective& d : parse_cache_control(value)) {
    if (d.name == "no-cache") return false;
    if (d.name == "max-stale") max_stale = true;
    if (d.name == "max-age" || d.name == "min-fresh") forbids = true;
  }
  return max_stale || !forbids;
}

}  // namespace cachekit::http
