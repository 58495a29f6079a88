// Serving stale pages (RFC 5861) and the background refresh behind stale-while-revalidate.
//
// One refresh per page: in this process the Refresher holds at most one task per page key;
// across processes sharing a store, the task takes a cachekit::Lease named after the page
// before calling the handler, and a process that finds it held leaves the refresh to the
// holder. The task also looks the page up first: a refresh that finished (here or elsewhere)
// between the stale read and the task's start has already stored a fresh page, and calling
// the handler again would be the duplicate the lease is there to prevent. A store error on the
// lease fails open: the refresh runs (one more upstream call, never a stale page forever).

#include <algorithm>
#include <array>
#include <exception>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/cache_policy.h"
#include "cachekit/lease.h"
#include "core/log.h"
#include "http/page_cache_impl.h"

namespace cachekit::http {

namespace {

std::int64_t ms_of(TimePoint t) { return t.time_since_epoch().count(); }

bool stale_open(const detail::Entry& entry, std::int64_t window_ms, TimePoint now) {
  return window_ms > 0 && entry.meta.fresh_until_ms + window_ms > ms_of(now);
}

}  // namespace

namespace {

// The refresher's key for a page variant.
std::string refresh_key(const Request& request, const PageLookup& found) {
  return request.method + ' ' + found.header_key + ' ' + found.stale->meta.selecting;
}

// Ends a refresh claim when the request that holds it is done, however it ends.
class ClaimGuard {
 public:
  ClaimGuard(detail::Refresher& refresher, std::string key)
      : refresher_(refresher), key_(std::move(key)) {}
  ~ClaimGuard() { refresher_.release(key_); }
  ClaimGuard(const ClaimGuard&) = delete;
  ClaimGuard& operator=(const ClaimGuard&) = delete;

 private:
  detail::Refresher& refresher_;
  std::string key_;
};

}  // namespace

bool PageCache::Impl::while_revalidate_open(const Request& request, const Lookup& found) const {
  return found.stale &&
         stale_open(*found.stale, found.stale->meta.stale_while_revalidate_ms, now()) &&
         request_accepts_stale(request);
}

Response PageCache::Impl::stale_revalidating(const Request& request, const Lookup& found) const {
  TimePoint now = this->now();
  std::int64_t ttl = detail::ttl_seconds(found.stale->meta.fresh_until_ms, now);
  Response response = detail::replay(request, *found.stale, now, options.reverse_proxy);
  detail::set_cache_status(response, CacheStatus::stale_while_revalidate(ttl));
  counters.stale_while_revalidate.fetch_add(1, std::memory_order_relaxed);
  return response;
}

Response PageCache::Impl::serve_stale(Request& request, const Handler& handler, const Lookup& found,
                                      bool handler_outlives_call) const {
  if (handler_outlives_call) {
    Request copy = request;
    copy.page_lookup.reset();
    refresher.submit(refresh_key(request, found),
                     [this, copy = std::move(copy), handler]() mutable noexcept {
                       refresh(std::move(copy), handler);
                     });
    return stale_revalidating(request, found);
  }
  // The handler (a middleware chain's next) may not be called after this request: the first
  // request to claim the refresh makes it here, on the miss path; the others get the stale page.
  std::string key = refresh_key(request, found);
  if (!refresher.claim(key)) return stale_revalidating(request, found);
  ClaimGuard claimed(refresher, std::move(key));
  return serve_miss(request, handler, found);
}

PageCache::Impl::Called PageCache::Impl::call_handler(Request& request, const Handler& handler,
                                                      const Lookup& found) const {
  auto stale_for = [&](std::optional<int> fwd_status) -> std::optional<StaleAnswer> {
    TimePoint now = this->now();
    if (!found.stale || !stale_open(*found.stale, found.stale->meta.stale_if_error_ms, now) ||
        !request_accepts_stale(request)) {
      return std::nullopt;
    }
    counters.stale_if_error.fetch_add(1, std::memory_order_relaxed);
    std::int64_t ttl = detail::ttl_seconds(found.stale->meta.fresh_until_ms, now);
    return StaleAnswer{detail::replay(request, *found.stale, now, options.reverse_proxy),
                       CacheStatus::stale_if_error(ttl, fwd_status)};
  };
  Called called;
  try {
    called.response = forward(request, handler, found);
  } catch (const std::exception& e) {
    called.stale = stale_for(std::nullopt);
    if (!called.stale) throw;
    cachekit::detail::logger()->warn("page handler failed, serving stale: {}", e.what());
    return called;
  }
  if (called.response.status >= 500) called.stale = stale_for(called.response.status);
  return called;
}

namespace {

// The client's preconditions: a reverse proxy answers them itself from what it stores.
constexpr std::array<std::string_view, 5> kPreconditions = {
    "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"};

// Fields a 304 must not change in the stored response: framing and hop-by-hop fields describe
// the 304 itself (RFC 9111 §3.2), and those that describe the stored body — its encoding,
// digest, range and entity tag — stay the body's (a 304 confirms that body, it has none).
bool updatable_by_304(std::string_view name) {
  for (std::string_view skip : {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive",
                                "TE", "Trailer", "Upgrade", "Proxy-Connection", "Content-Encoding",
                                "Content-MD5", "Content-Range", "ETag"}) {
    if (iequals(name, skip)) return false;
  }
  return true;
}

Response freshened(const Response& stored, const Response& not_modified) {
  Response out;
  out.status = stored.status;
  out.body = stored.body;
  for (const Headers::Field& field : stored.headers) {
    bool replaced =
        updatable_by_304(field.first) &&
        std::any_of(not_modified.headers.begin(), not_modified.headers.end(),
                    [&](const Headers::Field& f) { return iequals(f.first, field.first); });
    if (!replaced) out.headers.add(field.first, field.second);
  }
  for (const Headers::Field& field : not_modified.headers) {
    if (updatable_by_304(field.first)) out.headers.add(field.first, field.second);
  }
  // The 304 was generated now: without its own Date the old one would make the freshened
  // entry look as old as the first answer (store() stamps a missing Date).
  if (!not_modified.headers.contains("Date")) out.headers.erase("Date");
  return out;
}

}  // namespace

Response PageCache::Impl::forward(Request& request, const Handler& handler,
                                  const Lookup& found) const {
  if (!options.reverse_proxy || request.headers.contains("Range")) return handler(request);
  Request upstream = request;
  upstream.page_lookup.reset();
  if (upstream.method == "HEAD") upstream.method = "GET";
  for (std::string_view name : kPreconditions) upstream.headers.erase(name);
  const detail::Entry* stale = found.stale ? &*found.stale : nullptr;
  bool validating = false;
  if (stale != nullptr) {
    if (auto etag = stale->response.headers.get("ETag")) {
      upstream.headers.set("If-None-Match", std::string(*etag));
      validating = true;
    }
    if (auto modified = stale->response.headers.get("Last-Modified")) {
      upstream.headers.set("If-Modified-Since", std::string(*modified));
      validating = true;
    }
  }
  Response response = handler(upstream);
  if (validating && response.status == 304) {
    counters.revalidated.fetch_add(1, std::memory_order_relaxed);
    return freshened(stale->response, response);
  }
  return response;
}

void PageCache::Impl::answer_preconditions(const Request& request, Response& response) const {
  if (!options.reverse_proxy || response.status < 200 || response.status >= 300) return;
  if (request.headers.contains("Range")) return;  // forwarded with them
  if (auto conditional = get_conditional_response(request, response)) {
    response = std::move(*conditional);
  }
}

std::string PageCache::Impl::lease_name(std::string_view what, const Lookup& found,
                                        const Request& request) const {
  std::string name = "lease:";
  name += what;
  name += ':';
  name += request.method;
  name += ':';
  name += found.uri_md5;
  return name;
}

void PageCache::Impl::refresh(Request request, const Handler& handler) const {
  try {
    Lookup found = lookup(request);
    if (found.hit || !found.uri) return;  // refreshed meanwhile, or no longer keyable
    std::optional<Lease> lease;
    if (shared_store()) {
      auto acquired =
          Lease::try_acquire(cache(), lease_name("refresh", found, request),
                             std::max(options.coalesce_wait, std::chrono::milliseconds(1000)));
      if (acquired && !acquired.value().held()) {
        counters.refresh_skipped.fetch_add(1, std::memory_order_relaxed);
        return;  // another process is refreshing it
      }
      if (acquired) lease.emplace(std::move(acquired).value());  // else fail open
    }
    Response response = forward(request, handler, found);
    if (response.status >= 500) {
      counters.refresh_failures.fetch_add(1, std::memory_order_relaxed);
      return;  // the stale page goes on being served
    }
    store(request, response, &found);
    counters.refreshes.fetch_add(1, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    counters.refresh_failures.fetch_add(1, std::memory_order_relaxed);
    cachekit::detail::logger()->warn("page refresh failed: {}", e.what());
  } catch (...) {
    counters.refresh_failures.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace cachekit::http
