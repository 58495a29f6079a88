// The page cache's read and write paths: lookup (header list → page → checks → a response
// ready to send) and store (rules → patch → header list → page). serve.cc adds coalescing,
// invalidate.cc deliberate expiry.
//
// Reading follows Django's FetchFromCacheMiddleware (the GET page, then for HEAD the HEAD
// page) and then checks what Django trusts blindly: the entry's epoch against the header
// list's (so invalidated variants stay dead), the selecting header values against the
// request's (Django's md5 of values concatenated without separators is ambiguous), freshness
// on our own clock (a store's expiry resolution may be coarser), and Authorization.
//
// Storing adds `Vary: Cookie` when the handler read the cookie (Django's request.COOKIES →
// patch_vary_headers): a handler that greets the user by their session cookie and forgets to
// say so would otherwise have its page served to every other user of the URI.

#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <stdexcept>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/cache_policy.h"
#include "core/log.h"
#include "http/entry.h"
#include "http/header_list.h"
#include "http/page_cache_impl.h"
#include "http/page_keys.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

using std::chrono::milliseconds;

std::int64_t ms_of(TimePoint t) { return t.time_since_epoch().count(); }

std::int64_t whole_seconds(std::int64_t ms) { return ms <= 0 ? 0 : ms / 1000; }

bool is_2xx(int status) { return status >= 200 && status < 300; }

// A strong validator computed at store time when the handler gave none: a 128-bit XXH3 of
// the body (not a security boundary — an ETag only has to change when the body does — and
// an order of magnitude cheaper than Django's md5 on large pages).
std::string body_etag(std::string_view body) {
  XXH128_hash_t h = XXH3_128bits(body.data(), body.size());
  char buf[40];
  std::snprintf(buf, sizeof buf, "\"%016llx%016llx\"", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

// Fields a cache must not store (RFC 9111 §3.1): Connection and what it lists, the other
// hop-by-hop fields, proxy authentication. Age is regenerated on every hit.
std::vector<std::string> unstored_fields(const Response& response) {
  std::vector<std::string> out = {
      "Connection", "Keep-Alive", "Proxy-Connection",   "Transfer-Encoding",         "TE",
      "Trailer",    "Upgrade",    "Proxy-Authenticate", "Proxy-Authentication-Info", "Age"};
  std::string connection = detail::joined(response.headers, "Connection");  // owns the views
  for (std::string_view token : detail::split_list(connection)) out.emplace_back(token);
  return out;
}

// The response as it goes into the store (without hop-by-hop fields). Copies header fields
// only; the body Bytes is shared.
Response storable_copy(const Response& response) {
  Response copy;
  copy.status = response.status;
  copy.body = response.body;
  std::vector<std::string> skip = unstored_fields(response);
  // A plain loop variable, not a structured binding: clang 14 cannot capture those.
  for (const Headers::Field& field : response.headers) {
    bool skipped = std::any_of(skip.begin(), skip.end(),
                               [&](const std::string& s) { return iequals(s, field.first); });
    if (!skipped) copy.headers.add(field.first, field.second);
  }
  return copy;
}

// Date if absent, then Django's patch_response_headers with the entry's lifetime, except that a
// response whose only freshness is s-maxage keeps it that way: adding max-age / Expires would let
// browsers cache what the origin meant for shared caches only.
void patch_as_stored(Response& response, milliseconds lifetime, const Clock& clock) {
  // Date is the generation time a hit's Age is relative to (RFC 9110 §6.6.1); stamped now so
  // a server adding Date at send time cannot make a replayed page look newly generated.
  if (!response.headers.contains("Date")) {
    response.headers.set("Date", format_http_date(clock.now()));
  }
  if (is_2xx(response.status) && !response.headers.contains("ETag")) {
    response.headers.set("ETag", body_etag(response.body.view()));
  }
  auto directives = parse_cache_control(detail::joined(response.headers, "Cache-Control"));
  auto has = [&](std::string_view n) {
    return std::any_of(directives.begin(), directives.end(),
                       [&](const CacheDirective& d) { return d.name == n; });
  };
  if (has("s-maxage") && !has("max-age")) return;
  patch_response_headers(response, std::chrono::duration_cast<std::chrono::seconds>(lifetime),
                         clock);
}

// The byte range [first, last] of a body of `size` bytes that a single-range Range value asks
// for, or nullopt when the value is not one bytes range we can serve (then the whole 200 goes
// out, as RFC 9110 §14.2 allows). `unsatisfiable` is set for a well-formed range past the end.
std::optional<std::pair<std::size_t, std::size_t>> byte_range(std::string_view value,
                                                              std::size_t size,
                                                              bool& unsatisfiable) {
  value = detail::trim(value);
  if (!value.starts_with("bytes=")) return std::nullopt;
  value.remove_prefix(6);
  if (value.find(',') != std::string_view::npos) return std::nullopt;  // multipart: not here
  auto dash = value.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<std::uint64_t> {
    if (digits.empty() || digits.size() > 18) return std::nullopt;
    std::uint64_t n = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
  };
  auto first = number(detail::trim(value.substr(0, dash)));
  auto last = number(detail::trim(value.substr(dash + 1)));
  if (!first) {  // suffix: the last N bytes
    if (!last || *last == 0) {
      unsatisfiable = last.has_value();
      return std::nullopt;
    }
    std::size_t n = std::min<std::size_t>(*last, size);
    if (size == 0) {
      unsatisfiable = true;
      return std::nullopt;
    }
    return std::pair{size - n, size - 1};
  }
  if (!detail::trim(value.substr(dash + 1)).empty() && (!last || *last < *first)) {
    return std::nullopt;
  }
  if (*first >= size) {
    unsatisfiable = true;
    return std::nullopt;
  }
  std::size_t end = last ? std::min<std::size_t>(*last, size - 1) : size - 1;
  return std::pair{static_cast<std::size_t>(*first), end};
}

// A Range request on a stored 200: 206 with the slice (sharing the stored bytes), 416 when the
// range starts past the end; unchanged when If-Range does not match the stored validator
// (a strong ETag, or exactly the Last-Modified date) or the Range is not one we serve.
void serve_range(const Request& request, Response& response) {
  auto range = request.headers.get("Range");
  if (!range) return;
  if (auto if_range = request.headers.get("If-Range")) {
    std::string_view wanted = detail::trim(*if_range);
    auto etag = response.headers.get("ETag");
    auto modified = response.headers.get("Last-Modified");
    bool matches = wanted.starts_with('"') ? etag && detail::trim(*etag) == wanted
                                           : modified && detail::trim(*modified) == wanted;
    if (!matches) return;
  }
  bool unsatisfiable = false;
  auto slice = byte_range(*range, response.body.size(), unsatisfiable);
  const std::string size = std::to_string(response.body.size());
  if (unsatisfiable) {
    response.status = 416;
    response.headers.set("Content-Range", "bytes */" + size);
    response.headers.erase("Content-Length");
    response.body = Bytes();
    return;
  }
  if (!slice) return;
  response.status = 206;
  response.headers.set("Content-Range", "bytes " + std::to_string(slice->first) + "-" +
                                            std::to_string(slice->second) + "/" + size);
  response.headers.erase("Content-Length");
  response.body = response.body.substr(slice->first, slice->second - slice->first + 1);
}

// The response a hit sends: the entry replayed, with its Cache-Status member.
Response hit_response(const Request& request, detail::Entry entry, TimePoint now,
                      std::optional<CacheStatus::Fwd> collapsed_from, bool ranges) {
  std::int64_t ttl = whole_seconds(entry.meta.fresh_until_ms - ms_of(now));
  Response response = detail::replay(request, std::move(entry), now, ranges);
  CacheStatus status = CacheStatus::hit(ttl);
  if (collapsed_from) status = {.fwd = *collapsed_from, .collapsed = true, .ttl = ttl};
  detail::set_cache_status(response, status);
  return response;
}

// An upstream Age already used part of the lifetime (RFC 9111 §4.2.3). A reverse proxy also
// counts the time since the origin's Date (apparent_age); the larger of the two wins.
milliseconds initial_age(const Response& response, bool reverse_proxy, TimePoint now) {
  milliseconds age{0};
  if (reverse_proxy) {
    // RFC 9111 §5.1: an invalid Age (a list, two fields, a sign, a fraction, a parameter)
    // makes the response stale — as old as anything can be.
    auto fields = response.headers.get_all("Age");
    if (!fields.empty()) {
      auto seconds =
          fields.size() == 1 ? detail::parse_delta_seconds(detail::trim(fields[0])) : std::nullopt;
      age = std::chrono::seconds(seconds ? std::min<std::int64_t>(*seconds, 1LL << 31)
                                         : std::int64_t{1} << 31);
    }
  } else if (auto field = response.headers.get("Age")) {
    auto seconds = detail::parse_delta_seconds(detail::trim(*field));
    if (seconds) age = std::chrono::seconds(std::min<std::int64_t>(*seconds, 1LL << 31));
  }
  if (reverse_proxy) {
    if (auto field = response.headers.get("Date")) {
      if (auto date = parse_http_date(detail::trim(*field)); date && *date < now) {
        age = std::max(age, std::chrono::duration_cast<milliseconds>(now - *date));
      }
    }
  }
  return age;
}

bool has_validator(const Response& response) {
  return response.headers.contains("ETag") || response.headers.contains("Last-Modified");
}

}  // namespace

namespace detail {

Response replay(const Request& request, Entry entry, TimePoint now, bool ranges) {
  Response response = std::move(entry.response);
  if (is_2xx(response.status)) {
    if (auto conditional = get_conditional_response(request, response)) {
      response = std::move(*conditional);
    } else if (ranges && response.status == 200) {
      serve_range(request, response);
    }
  }
  if (request.method == "HEAD" && !response.body.empty()) {
    if (!response.headers.contains("Content-Length")) {
      response.headers.set("Content-Length", std::to_string(response.body.size()));
    }
    response.body = Bytes();
  }
  response.headers.set("Age", std::to_string(whole_seconds(ms_of(now) - entry.meta.born_ms)));
  return response;
}

std::int64_t ttl_seconds(std::int64_t until_ms, TimePoint now) {
  std::int64_t left = until_ms - ms_of(now);
  return left >= 0 ? left / 1000 : -((-left + 999) / 1000);
}

void set_cache_status(Response& response, const CacheStatus& status) {
  std::string value = joined(response.headers, "Cache-Status");
  if (!value.empty()) value += ", ";
  value += render_cache_status(status);
  response.headers.set("Cache-Status", std::move(value));
  response.cache_status = status;
}

void vary_on_cookie_if_read(const Request& request, Response& response) {
  if (request.cookies_read()) patch_vary_headers(response, {"Cookie"});
}

}  // namespace detail

PageCache::Impl::Impl(PageCacheOptions o)
    : options(std::move(o)),
      clock(options.clock != nullptr ? options.clock : &SystemClock::instance()) {}

PageCache::Impl::Lookup PageCache::Impl::lookup(const Request& request,
                                                std::optional<CacheStatus::Fwd> collapsed_from,
                                                const Read* reader) const {
  auto read = [&](const std::string& key) -> std::optional<std::optional<Bytes>> {
    if (reader != nullptr) return (*reader)(key);
    return cache().get(key);
  };
  Lookup result;
  result.owner = this;
  result.flights_finished = coalescer.finished();  // before the store is read
  result.uri = cache_uri(request, options.allowed_hosts);
  if (!result.uri) return result;
  result.uri_md5 = md5_hex(*result.uri);  // once, for every key below
  const std::string& uri_md5 = result.uri_md5;
  result.header_key = detail::header_key_for(options.key_prefix, uri_md5);
  auto list_bytes = read(result.header_key);
  if (!list_bytes) {
    result.unanswered = true;
    return result;
  }
  if (*list_bytes) result.list = detail::decode_header_list((**list_bytes).view());
  if (!result.list) return result;  // uri-miss
  remember_names(result.header_key, result.list->names);
  const detail::HeaderList* list = &*result.list;
  result.fwd = CacheStatus::Fwd::kMiss;
  std::string selecting = detail::selecting_values(request, list->names);
  TimePoint now = this->now();
  // Django's order: a HEAD is answered from the GET page first, then from a HEAD page.
  for (std::string_view method : {std::string_view("GET"), std::string_view("HEAD")}) {
    if (method == "HEAD" && request.method != "HEAD") break;
    auto key = detail::page_key_for(options.key_prefix, method, uri_md5, request, list->names);
    auto value = read(key);
    if (!value) {
      result.unanswered = true;
      return result;
    }
    if (!*value) continue;
    auto entry = detail::decode_entry(**value);
    if (!entry || entry->meta.epoch != list->epoch) continue;  // corrupt, or invalidated
    if (entry->meta.selecting != selecting) {
      result.fwd = CacheStatus::Fwd::kVaryMiss;
      continue;
    }
    if (entry->meta.fresh_until_ms <= ms_of(now)) {
      result.fwd = CacheStatus::Fwd::kStale;
      std::int64_t stale_until =
          entry->meta.fresh_until_ms +
          std::max(entry->meta.stale_while_revalidate_ms, entry->meta.stale_if_error_ms);
      // A reverse proxy keeps an expired entry with a validator to revalidate it.
      const bool usable =
          stale_until > ms_of(now) || (options.reverse_proxy && has_validator(entry->response));
      if (usable && !result.stale &&
          authorization_allows(request, entry->response, options.reverse_proxy)) {
        result.stale = std::move(*entry);
      }
      continue;
    }
    if (!authorization_allows(request, entry->response, options.reverse_proxy)) {
      result.fwd = CacheStatus::Fwd::kRequest;
      continue;
    }
    result.hit =
        hit_response(request, std::move(*entry), now, collapsed_from, options.reverse_proxy);
    return result;
  }
  return result;
}

void PageCache::Impl::remember_names(const std::string& header_key,
                                     const std::vector<std::string>& names) const {
  std::lock_guard lock(names_mutex);
  auto it = remembered_names.find(header_key);
  if (it != remembered_names.end()) {
    if (it->second != names) it->second = names;
    return;
  }
  if (remembered_names.size() >= kRememberedLists) remembered_names.clear();
  remembered_names.emplace(header_key, names);
}

std::vector<std::string> PageCache::Impl::keys_to_prefetch(const Request& request) const {
  auto uri = cache_uri(request, options.allowed_hosts);
  if (!uri) return {};
  std::string uri_md5 = md5_hex(*uri);
  std::vector<std::string> keys{detail::header_key_for(options.key_prefix, uri_md5)};
  std::vector<std::string> names;
  {
    std::lock_guard lock(names_mutex);
    auto it = remembered_names.find(keys.front());
    if (it == remembered_names.end()) return {};
    names = it->second;
  }
  keys.push_back(detail::page_key_for(options.key_prefix, "GET", uri_md5, request, names));
  if (request.method == "HEAD") {
    keys.push_back(detail::page_key_for(options.key_prefix, "HEAD", uri_md5, request, names));
  }
  return keys;
}

// The header list a store learns from. A list the lookup read is read again: an invalidation
// may have deleted it while the handler ran, and writing its epoch back would bring the old
// variants back. When the lookup found none, the store mints a new epoch whatever happened
// meanwhile, so that read stands (a concurrent first store of another variant may then lose
// its page to the new epoch: one more miss, never a wrong page).
std::optional<detail::HeaderList> PageCache::Impl::list_for_store(
    const Lookup* found, const std::string& header_key) const {
  if (found != nullptr && !found->list) return std::nullopt;
  return detail::read_header_list(cache(), header_key);
}

PageCache::Impl::Stored PageCache::Impl::store(const Request& request, Response& response,
                                               const Lookup* found) const {
  Stored stored;
  // Before any rule looks at Vary: a page built from the cookie is that cookie's page.
  detail::vary_on_cookie_if_read(request, response);
  auto uri = cache_uri(request, options.allowed_hosts);
  if (!uri) {
    stored.status = {.fwd = CacheStatus::Fwd::kBypass, .detail = "invalid-host"};
    return stored;
  }
  // The lookup's keys hold unless the handler rewrote the request's URI.
  if (found != nullptr && found->uri != uri) found = nullptr;
  std::string uri_md5 = found != nullptr ? found->uri_md5 : md5_hex(*uri);
  std::string header_key =
      found != nullptr ? found->header_key : detail::header_key_for(options.key_prefix, uri_md5);
  std::optional<detail::HeaderList> existing = list_for_store(found, header_key);
  stored.status.fwd = found != nullptr ? found->fwd
                      : existing       ? CacheStatus::Fwd::kMiss
                                       : CacheStatus::Fwd::kUriMiss;
  TimePoint now = this->now();
  const bool proxy = options.reverse_proxy;
  milliseconds age = initial_age(response, proxy, now);
  StoreDecision decision =
      storability(request, response, {options.page_timeout, options.default_timeout, proxy}, now);
  // Stale on arrival: a reverse proxy keeps it to revalidate when it has a validator.
  const bool revalidate_only = proxy && has_validator(response);
  if (decision.store && decision.lifetime <= age && !revalidate_only) {
    decision = {false, "zero-lifetime", {}};
  }
  if (decision.store && (response.stream || (options.max_body_bytes != 0 &&
                                             response.body.size() > options.max_body_bytes))) {
    decision = {false, "size", {}};
  }
  if (!decision.store) {
    stored.status.detail = decision.reason;  // a literal of cache_policy.cc or "size"
    return stored;
  }
  milliseconds remaining = std::max(milliseconds(0), decision.lifetime - age);
  // Read before patching: patch_as_stored adds max-age, never a revalidation directive.
  StaleWindows stale =
      stale_windows(response, options.stale_while_revalidate, options.stale_if_error);
  if (proxy) {
    if (!response.headers.contains("Date")) {
      response.headers.set("Date", format_http_date(clock->now()));
    }
  } else {
    patch_as_stored(response, decision.lifetime, *clock);
  }
  // The store keeps the page (and the header list that reaches it) through its stale windows,
  // and a reverse proxy a page with a validator for keep_validated more, to revalidate it.
  milliseconds kept = remaining + stale.longest();
  if (revalidate_only) kept = std::max<milliseconds>(kept, remaining + options.keep_validated);
  kept = std::max<milliseconds>(kept, std::chrono::seconds(1));
  detail::HeaderList list = detail::learn_header_list(
      cache(), header_key, vary_header_list(response), existing, kept, now);
  remember_names(header_key, list.names);
  detail::EntryMeta meta{.born_ms = ms_of(now) - age.count(),
                         .fresh_until_ms = ms_of(now) + remaining.count(),
                         .stale_while_revalidate_ms = stale.while_revalidate.count(),
                         .stale_if_error_ms = stale.if_error.count(),
                         .epoch = list.epoch,
                         .selecting = detail::selecting_values(request, list.names)};
  // A reverse proxy forwards HEAD as GET: what comes back is the GET page.
  std::string_view method = request.method;
  if (proxy && method == "HEAD") method = "GET";
  std::string page_key =
      detail::page_key_for(options.key_prefix, method, uri_md5, request, list.names);
  bool written = cache().set(page_key, detail::encode_entry(meta, storable_copy(response)), kept);
  stored.shareable = true;
  stored.selecting = std::move(meta.selecting);
  stored.vary_names = std::move(list.names);
  if (written) {
    stored.status.stored = true;
    stored.status.ttl = whole_seconds(remaining.count());
  }
  return stored;
}

namespace {

// The cache URI of `reference` (a Location or Content-Location value) when it names a resource
// of the request's own origin: "/path?q", "path" (relative to the request's directory) or
// "scheme://host[:port]/path?q" with the request's scheme and host. nullopt otherwise: another
// origin's pages are never invalidated (RFC 9111 §4.4 — that would let one site purge another).
std::optional<std::string> same_origin_uri(const Request& request, std::string_view reference,
                                           std::span<const std::string> allowed_hosts) {
  reference = detail::trim(reference);
  if (reference.empty() || reference.find('#') != std::string_view::npos) return std::nullopt;
  Request target;
  target.scheme = request.scheme;
  target.headers.set("Host", std::string(request.host()));
  auto scheme_end = reference.find("://");
  if (scheme_end != std::string_view::npos) {
    target.scheme = detail::lower(reference.substr(0, scheme_end));
    reference.remove_prefix(scheme_end + 3);
    auto slash = reference.find('/');
    target.headers.set("Host", std::string(reference.substr(0, slash)));
    reference = slash == std::string_view::npos ? std::string_view("/") : reference.substr(slash);
  } else if (reference.front() != '/') {
    std::string_view directory = request.path;
    directory = directory.substr(0, directory.rfind('/') + 1);
    std::string joined_path(directory);
    joined_path += reference;
    auto question = joined_path.find('?');
    target.path = joined_path.substr(0, question);
    if (question != std::string::npos) target.query = joined_path.substr(question + 1);
    reference = {};
  }
  if (!reference.empty()) {
    auto question = reference.find('?');
    target.path = std::string(reference.substr(0, question));
    if (question != std::string_view::npos)
      target.query = std::string(reference.substr(question + 1));
  }
  auto mine = cache_uri(request, allowed_hosts);
  auto theirs = cache_uri(target, allowed_hosts);
  if (!mine || !theirs) return std::nullopt;
  auto origin_of = [](std::string_view uri) {
    auto host_start = uri.find("://") + 3;
    return uri.substr(0, uri.find('/', host_start));
  };
  if (origin_of(*mine) != origin_of(*theirs)) return std::nullopt;
  return theirs;
}

}  // namespace

void PageCache::Impl::update_other(const Request& request, Response& response) const {
  CacheStatus status{.fwd = CacheStatus::Fwd::kMethod};
  // RFC 9111 §4.4: a non-error response to an unsafe method invalidates the target URI, and
  // the URIs its Location and Content-Location name on the same origin.
  if (is_unsafe_method(request.method) && response.status >= 200 && response.status < 400) {
    auto uri = cache_uri(request, options.allowed_hosts);
    bool removed = uri && forget(*uri);
    for (std::string_view field :
         {std::string_view("Location"), std::string_view("Content-Location")}) {
      auto value = response.headers.get(field);
      if (!value) continue;
      auto other = same_origin_uri(request, *value, options.allowed_hosts);
      if (other && other != uri && forget(*other)) removed = true;
    }
    if (removed) status.detail = "invalidated";
  }
  detail::set_cache_status(response, status);
}

PageCache::PageCache(PageCacheOptions options) {
  if (options.cache == nullptr) throw std::invalid_argument("PageCache: options.cache is null");
  impl_ = std::make_unique<Impl>(std::move(options));
}

PageCache::~PageCache() = default;

std::optional<Response> PageCache::fetch(const Request& request) const {
  if (!is_cacheable_method(request.method)) return std::nullopt;
  try {
    return impl_->lookup(request).hit;
  } catch (const std::exception& e) {  // nothing on a request path may throw (bad_alloc...)
    cachekit::detail::logger()->error("page cache fetch failed: {}", e.what());
    return std::nullopt;
  }
}

std::optional<Response> PageCache::fetch_and_keep(Request& request) const {
  request.page_lookup.reset();
  if (!is_cacheable_method(request.method)) return std::nullopt;
  try {
    Impl::Lookup found = impl_->lookup(request);
    if (found.hit) return std::move(found.hit);
    if (found.uri) request.page_lookup = std::make_shared<PageLookup>(std::move(found));
  } catch (const std::exception& e) {  // as fetch(): a lookup that could not finish is a miss
    cachekit::detail::logger()->error("page cache fetch failed: {}", e.what());
  }
  return std::nullopt;
}

std::optional<Response> PageCache::fetch_in_process(const Request& request) const {
  if (!is_cacheable_method(request.method)) return std::nullopt;
  try {
    const Impl::Read in_process = [this](const std::string& key) {
      return impl_->cache().get_if_in_process(key);
    };
    return impl_->lookup(request, std::nullopt, &in_process).hit;
  } catch (const std::exception& e) {  // as fetch()
    cachekit::detail::logger()->error("page cache fetch failed: {}", e.what());
    return std::nullopt;
  }
}

std::vector<std::string> PageCache::keys_to_prefetch(const Request& request) const {
  if (!is_cacheable_method(request.method)) return {};
  try {
    return impl_->keys_to_prefetch(request);
  } catch (const std::exception& e) {  // as fetch()
    cachekit::detail::logger()->error("page cache fetch failed: {}", e.what());
    return {};
  }
}

std::optional<Response> PageCache::fetch_prefetched(
    const Request& request, std::span<const std::string> keys,
    std::span<const std::optional<Bytes>> values) const {
  if (!is_cacheable_method(request.method) || keys.size() != values.size()) return std::nullopt;
  try {
    // A read of a key that was not fetched (the header list named other headers than the
    // remembered ones) stops the lookup: the caller looks again the usual way.
    const Impl::Read prefetched =
        [&](const std::string& key) -> std::optional<std::optional<Bytes>> {
      for (std::size_t i = 0; i < keys.size(); ++i) {
        if (keys[i] == key) return values[i];
      }
      return std::nullopt;
    };
    return impl_->lookup(request, std::nullopt, &prefetched).hit;
  } catch (const std::exception& e) {  // as fetch()
    cachekit::detail::logger()->error("page cache fetch failed: {}", e.what());
    return std::nullopt;
  }
}

void PageCache::update(const Request& request, Response& response) const {
  try {
    if (!is_cacheable_method(request.method)) return impl_->update_other(request, response);
    auto stored = impl_->store(request, response, nullptr);
    detail::set_cache_status(response, stored.status);
  } catch (const std::exception& e) {
    cachekit::detail::logger()->error("page cache update failed: {}", e.what());
  }
}

bool PageCache::invalidate(std::string_view absolute_uri) const {
  try {
    return impl_->invalidate(absolute_uri);
  } catch (const std::exception& e) {
    cachekit::detail::logger()->error("page cache invalidate failed: {}", e.what());
    return false;
  }
}

std::size_t PageCache::invalidate_all() const {
  try {
    return impl_->invalidate_all();
  } catch (const std::exception& e) {
    cachekit::detail::logger()->error("page cache invalidate_all failed: {}", e.what());
    return 0;
  }
}

PageCacheStats PageCache::stats() const noexcept {
  const auto& c = impl_->counters;
  return {.stale_while_revalidate = c.stale_while_revalidate.load(std::memory_order_relaxed),
          .stale_if_error = c.stale_if_error.load(std::memory_order_relaxed),
          .refreshes = c.refreshes.load(std::memory_order_relaxed),
          .refresh_failures = c.refresh_failures.load(std::memory_order_relaxed),
          .refresh_skipped = c.refresh_skipped.load(std::memory_order_relaxed),
          .fleet_collapsed = c.fleet_collapsed.load(std::memory_order_relaxed),
          .revalidated = c.revalidated.load(std::memory_order_relaxed)};
}

std::size_t PageCache::refreshes_pending() const { return impl_->refresher.pending(); }

std::size_t PageCache::coalesced_waiters() const noexcept { return impl_->coalescer.waiting(); }

bool PageCache::fetch_is_local() const noexcept {
  return !impl_->cache().backend_info().outlives_process;
}

bool PageCache::hits_may_be_in_process() const noexcept {
  return impl_->cache().backend_info().has_local_copies;
}

const PageCacheOptions& PageCache::options() const noexcept { return impl_->options; }

}  // namespace cachekit::http
