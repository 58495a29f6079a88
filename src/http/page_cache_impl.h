#pragma once
// PageCache's insides, shared by page_cache.cc (lookup and store), serve.cc (the miss path
// with coalescing) and invalidate.cc.

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "cachekit/http/cache_key.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/lease.h"
#include "http/coalescer.h"
#include "http/entry.h"
#include "http/header_list.h"
#include "http/refresher.h"

namespace cachekit::http {

// What a lookup found. `uri` is empty when the request cannot be keyed (bad Host/scheme).
// A miss carries what the miss path needs so that it does not read the store again.
struct PageLookup {
  std::optional<Response> hit;  // ready to send: Age, Cache-Status, 304/412, HEAD applied
  CacheStatus::Fwd fwd = CacheStatus::Fwd::kUriMiss;  // why not a hit (RFC 9211 fwd)
  std::optional<std::string> uri;
  std::string uri_md5;
  std::string header_key;
  std::optional<detail::HeaderList> list;  // the header list read (nullopt: none stored)
  // An expired entry for this request still inside one of its stale windows (RFC 5861).
  std::optional<detail::Entry> stale;
  // Coalescer::finished() before the store was read: a flight that finished since may have
  // stored the page.
  std::uint64_t flights_finished = 0;
  const void* owner = nullptr;  // the PageCache::Impl that looked
  // An in-process lookup stopped at a read only a round trip could answer.
  bool unanswered = false;
};

struct PageCache::Impl {
  explicit Impl(PageCacheOptions o);

  using Lookup = PageLookup;
  // What storing a handler's response did.
  struct Stored {
    bool shareable = false;  // the rules allowed storing (whether or not the write worked)
    CacheStatus status;      // this cache's Cache-Status member, as a value
    std::vector<std::string> vary_names;
    std::string selecting;
  };

  // How a lookup reads one key: its value (or nullopt inside: missing), or nullopt when this
  // read cannot answer, which stops the lookup (`unanswered`).
  using Read = std::function<std::optional<std::optional<Bytes>>(const std::string& key)>;
  // GET/HEAD only; never throws. `collapsed_from`: a hit is marked as a miss for that reason
  // answered by another's response (`fwd=<reason>; collapsed`) instead of `hit`. `read`:
  // instead of Cache::get (an in-process read, or values fetched beforehand).
  [[nodiscard]] Lookup lookup(const Request& request,
                              std::optional<CacheStatus::Fwd> collapsed_from = std::nullopt,
                              const Read* read = nullptr) const;
  // The keys a lookup of `request` would read, in its order, when the request's header list
  // was seen before (its names make the page keys): the header list's key, then the GET page
  // (and for HEAD the HEAD page). Empty when they cannot be known without a read.
  [[nodiscard]] std::vector<std::string> keys_to_prefetch(const Request& request) const;
  void remember_names(const std::string& header_key, const std::vector<std::string>& names) const;
  // Applies the storage rules to a GET/HEAD response, patches and stores it. `found`: this
  // request's lookup (its verdict and what it read); nullptr: derive uri-miss / miss from the
  // header list.
  Stored store(const Request& request, Response& response, const Lookup* found) const;
  std::optional<detail::HeaderList> list_for_store(const Lookup* found,
                                                   const std::string& header_key) const;
  // update() for a method that is not GET/HEAD: invalidation on success.
  void update_other(const Request& request, Response& response) const;

  // PageCache::serve / serve_chained.
  Response serve(Request& request, const Handler& handler, bool handler_outlives_call) const;
  Response serve_miss(Request& request, const Handler& handler, const Lookup& lookup) const;
  Response lead(Request& request, const Handler& handler, const Lookup& lookup,
                const std::string& flight_key, detail::Coalescer::Ticket ticket) const;
  Response follow(Request& request, const Handler& handler, const Lookup& lookup,
                  const detail::Coalescer::Ticket& ticket) const;
  // The handler and store() without coalescing.
  Response run(Request& request, const Handler& handler, const Lookup& found) const;

  // ---- serving stale (stale.cc) ----
  // A stale response ready to send, with the status it is served under (not yet rendered).
  struct StaleAnswer {
    Response response;
    CacheStatus status;
  };
  // True when the lookup's stale entry is inside its stale-while-revalidate window and the
  // request accepts stale.
  [[nodiscard]] bool while_revalidate_open(const Request& request, const Lookup& found) const;
  // The stale entry served at once (`hit; detail=stale-while-revalidate; ttl=-N`), and one
  // refresh of the page: in the background when `handler_outlives_call` (a copy of the handler
  // runs on the refresher); otherwise (a middleware chain's next, valid during this call only)
  // the first request to claim the refresh makes it itself, on the miss path, while the others
  // get the stale page. Precondition: while_revalidate_open().
  Response serve_stale(Request& request, const Handler& handler, const Lookup& found,
                       bool handler_outlives_call) const;
  Response stale_revalidating(const Request& request, const Lookup& found) const;
  // The handler's response — or, when it threw or answered 5xx and the lookup's stale entry is
  // inside its stale-if-error window, that entry (`stale` set). Rethrows what the handler threw
  // when there is no stale entry to serve.
  struct Called {
    Response response;
    std::optional<StaleAnswer> stale;
  };
  Called call_handler(Request& request, const Handler& handler, const Lookup& found) const;
  // handler(request), except in reverse-proxy mode: the request goes forward as a GET without
  // the client's preconditions, with the stale entry's validators when there is one; a 304
  // to those comes back as the stale entry freshened with the 304's fields (RFC 9111 §4.3.4).
  Response forward(Request& request, const Handler& handler, const Lookup& found) const;
  // In reverse-proxy mode, the client's preconditions evaluated on a 2xx `response` that
  // came from the origin (forward() did not send them): its 304 or 412, or `response`.
  void answer_preconditions(const Request& request, Response& response) const;
  // Publishes a stale page that replaced the leader's error to its waiters, and returns it.
  Response publish_stale(detail::LeaderGuard& guard, const Lookup& found, StaleAnswer stale) const;
  // The background refresh: looks again (a refresh elsewhere may have stored the page), takes
  // the fleet lease on a shared store, runs the handler on `request` and stores its response.
  void refresh(Request request, const Handler& handler) const;
  // The lease name that makes one process of a fleet do a page's work ("lease:" + what).
  [[nodiscard]] std::string lease_name(std::string_view what, const Lookup& found,
                                       const Request& request) const;
  // The fleet lease of a miss on a shared store (fleet.cc): held (or nullopt) when this
  // process should run the handler; a hit when another process stored the page meanwhile.
  struct FleetTurn {
    std::optional<Lease> lease;
    std::optional<Response> hit;
  };
  FleetTurn take_fleet_turn(const Request& request, const Lookup& found) const;
  // The Vary names of header lists read lately, by header-list key: a guess, checked against
  // the list fetched with the page (keys_to_prefetch). Bounded; emptied when full.
  static constexpr std::size_t kRememberedLists = 10000;
  mutable std::mutex names_mutex;
  mutable std::unordered_map<std::string, std::vector<std::string>> remembered_names;

  [[nodiscard]] bool shared_store() const noexcept {
    return options.cache->backend_info().outlives_process;
  }

  // What a successful write does to its URI: erases the header list (every variant becomes
  // unreachable) and the no-Vary pages, never listing the store. `uri` as cache_uri() built it.
  bool forget(std::string_view uri) const;
  bool invalidate(std::string_view uri) const;
  std::size_t invalidate_all() const;

  [[nodiscard]] TimePoint now() const noexcept { return clock->now(); }
  [[nodiscard]] Cache& cache() const noexcept { return *options.cache; }

  struct Counters {
    std::atomic<std::uint64_t> stale_while_revalidate{0}, stale_if_error{0}, refreshes{0},
        refresh_failures{0}, refresh_skipped{0}, fleet_collapsed{0}, revalidated{0};
  };

  PageCacheOptions options;
  const Clock* clock;
  mutable detail::Coalescer coalescer;
  mutable Counters counters;
  // Last: destroyed first, so a running refresh finishes before what it uses goes away.
  mutable detail::Refresher refresher;
};

namespace detail {
// Records `status` on the response (Response::cache_status) and appends its rendered member to
// the response's Cache-Status list (after any upstream caches' members).
void set_cache_status(Response& response, const CacheStatus& status);
// A stored entry as the response to `request`: its 304/412 when the request's preconditions
// say so (2xx entries), HEAD without the body, and Age. No Cache-Status member yet.
// With `ranges` (reverse-proxy mode), a single-range `Range: bytes=...` request on a stored 200
// gets its 206 (or 416), subject to If-Range (RFC 9110 §14).
Response replay(const Request& request, Entry entry, TimePoint now, bool ranges = false);
// Whole seconds from `now` to `until`, rounded toward the past: negative once `until` passed.
std::int64_t ttl_seconds(std::int64_t until_ms, TimePoint now);
// Adds `Vary: Cookie` when the handler read the request's Cookie (Request::cookies_read()).
void vary_on_cookie_if_read(const Request& request, Response& response);
}  // namespace detail

}  // namespace cachekit::http
