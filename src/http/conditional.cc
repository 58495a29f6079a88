// Conditional requests, evaluated in RFC 9110 §13.2.2's order exactly as Django's
// get_conditional_response does (django/utils/cache.py), so an application moving from
// Django's ConditionalGetMiddleware sees the same 304s and 412s. If-Range is not supported
// (nothing here serves ranges).

#include <algorithm>

#include "cachekit/http/cache_control.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

// Django's ETAG_MATCH: \A((?:W/)?"[^"]*")\Z
bool is_etag(std::string_view tag) noexcept {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag.size() >= 2 && tag.front() == '"' && tag.back() == '"' &&
         tag.substr(1, tag.size() - 2).find('"') == std::string_view::npos;
}

std::string_view without_weak(std::string_view tag) noexcept {
  return tag.starts_with("W/") ? tag.substr(2) : tag;
}

bool if_match_passes(std::string_view target, const std::vector<std::string>& tags) {
  if (target.empty()) return false;  // no current representation: nothing can match
  if (tags.size() == 1 && tags.front() == "*") return true;
  if (target.starts_with("W/")) return false;  // a weak tag never matches strongly
  return std::find(tags.begin(), tags.end(), target) != tags.end();
}

bool if_none_match_passes(std::string_view target, const std::vector<std::string>& tags) {
  if (target.empty()) return true;
  if (tags.size() == 1 && tags.front() == "*") return false;
  std::string_view weak_target = without_weak(target);
  return std::none_of(tags.begin(), tags.end(),
                      [&](const std::string& t) { return without_weak(t) == weak_target; });
}

bool is_get_or_head(const Request& r) { return r.method == "GET" || r.method == "HEAD"; }

std::optional<TimePoint> date_header(const Request& r, std::string_view name) {
  auto v = r.headers.get(name);
  return v ? parse_http_date(detail::trim(*v)) : std::nullopt;
}

Response precondition_failed() {
  Response r;
  r.status = 412;
  return r;
}

// RFC 9110 §15.4.5: a 304 carries what the 200 would have among these (Django adds
// Last-Modified and the cookies).
Response not_modified(const Response* original) {
  Response r;
  r.status = 304;
  if (original == nullptr) return r;
  for (std::string_view name : {"Cache-Control", "Content-Location", "Date", "ETag", "Expires",
                                "Last-Modified", "Vary", "Set-Cookie"}) {
    for (std::string_view v : original->headers.get_all(name)) {
      r.headers.add(name, std::string(v));
    }
  }
  return r;
}

}  // namespace

std::vector<std::string> parse_etags(std::string_view value) {
  if (detail::trim(value) == "*") return {"*"};
  std::vector<std::string> out;
  // Split on every comma, as Django does: a tag containing a comma is then dropped as
  // malformed instead of being matched by halves.
  while (!value.empty()) {
    std::size_t comma = value.find(',');
    std::string_view member = detail::trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (is_etag(member)) out.emplace_back(member);
  }
  return out;
}

std::optional<Response> get_conditional_response(const Request& request, std::string_view etag,
                                                 std::optional<TimePoint> last_modified,
                                                 const Response* response) {
  if (response != nullptr && (response->status < 200 || response->status >= 300)) {
    return std::nullopt;  // only successful responses become conditional
  }
  auto if_match = parse_etags(request.headers.get("If-Match").value_or(""));
  auto if_unmodified_since = date_header(request, "If-Unmodified-Since");
  auto if_none_match = parse_etags(request.headers.get("If-None-Match").value_or(""));
  auto if_modified_since = date_header(request, "If-Modified-Since");

  // Step 1: If-Match.
  if (!if_match.empty() && !if_match_passes(etag, if_match)) return precondition_failed();
  // Step 2: If-Unmodified-Since, only without If-Match.
  if (if_match.empty() && if_unmodified_since &&
      !(last_modified && *last_modified <= *if_unmodified_since)) {
    return precondition_failed();
  }
  // Step 3: If-None-Match.
  if (!if_none_match.empty() && !if_none_match_passes(etag, if_none_match)) {
    if (is_get_or_head(request)) return not_modified(response);
    return precondition_failed();
  }
  // Step 4: If-Modified-Since, only without If-None-Match, only for GET/HEAD.
  if (if_none_match.empty() && if_modified_since && is_get_or_head(request) && last_modified &&
      *last_modified <= *if_modified_since) {
    return not_modified(response);
  }
  return std::nullopt;
}

std::optional<Response> get_conditional_response(const Request& request, const Response& response) {
  std::string_view etag = detail::trim(response.headers.get("ETag").value_or(""));
  std::optional<TimePoint> last_modified;
  if (auto lm = response.headers.get("Last-Modified")) {
    last_modified = parse_http_date(detail::trim(*lm));
  }
  return get_conditional_response(request, etag, last_modified, &response);
}

}  // namespace cachekit::http
