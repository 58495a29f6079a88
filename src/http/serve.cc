// The miss path: one handler call for concurrent misses of a page (coalescer.h explains the
// protocol), then store().
//
// What a waiter may receive is decided by the same rules as a hit, because it IS a reuse of
// a stored-quality response: the leader's response must have been storable (so never
// private, no-store, Set-Cookie, Vary: *, or Authorization-dependent), the waiter's request
// must select the same variant (its Vary header values equal the leader's), and a waiter
// with Authorization only takes a public / s-maxage response. Anything else — and a leader
// that threw or overran coalesce_wait — sends the waiter back to the cache and then to its
// own handler call.
//
// Flights and hit-for-pass marks are per URI, method and request class (request_class()),
// so one private answer to a logged-in user does not stop anonymous misses from coalescing.

#include <exception>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/cache_policy.h"
#include "http/entry.h"
#include "http/page_cache_impl.h"
#include "http/page_keys.h"

namespace cachekit::http {

namespace {

// The class of request a flight and a hit-for-pass mark belong to: with Authorization, with
// a Cookie (a session, most often), or with neither. A page that answers one class privately
// is usually shared for another (the logged-in home page vs the anonymous one), so a pass
// caused by one class must not switch coalescing off for the others, and a request should
// not queue behind a leader of another class whose answer it is unlikely to be able to use.
// Field names are compared directly: asking request.headers for "Cookie" would count as the
// application reading it (message.h).
char request_class(const Request& request) noexcept {
  bool cookie = false;
  for (const Headers::Field& field : request.headers) {
    if (iequals(field.first, "Authorization")) return 'a';
    if (iequals(field.first, "Cookie")) cookie = true;
  }
  return cookie ? 'c' : 'n';
}

bool usable_by(const Request& request, const detail::Outcome& outcome, bool reverse_proxy) {
  return outcome.response && authorization_allows(request, *outcome.response, reverse_proxy) &&
         detail::selecting_values(request, outcome.vary_names) == outcome.selecting;
}

}  // namespace

Response PageCache::serve(Request& request, const Handler& handler) const {
  return impl_->serve(request, handler, /*handler_outlives_call=*/true);
}

Response PageCache::serve_chained(Request& request, const Next& next) const {
  return impl_->serve(request, next, /*handler_outlives_call=*/false);
}

Response PageCache::Impl::serve(Request& request, const Handler& handler,
                                bool handler_outlives_call) const {
  if (!is_cacheable_method(request.method)) {
    Response response = handler(request);
    try {
      update_other(request, response);
    } catch (const std::exception&) {  // as PageCache::update(): the response goes out as is
    }
    return response;
  }
  // A miss that fetch_and_keep() already looked up (on a server's io thread) is not read again.
  std::shared_ptr<PageLookup> kept = std::move(request.page_lookup);
  Impl::Lookup found;
  if (kept && kept->owner == this && !kept->hit) {
    found = std::move(*kept);
  } else {
    try {
      found = lookup(request);
    } catch (const std::exception&) {
      found = Impl::Lookup{};  // fail open: a lookup that could not finish is a miss
    }
  }
  if (found.hit) return std::move(*found.hit);
  if (while_revalidate_open(request, found)) {
    return serve_stale(request, handler, found, handler_outlives_call);
  }
  if (!found.uri) {
    Response response = handler(request);
    detail::vary_on_cookie_if_read(request, response);  // for the caches downstream
    detail::set_cache_status(response,
                             {.fwd = CacheStatus::Fwd::kBypass, .detail = "invalid-host"});
    return response;
  }
  return serve_miss(request, handler, found);
}

Response PageCache::Impl::serve_miss(Request& request, const Handler& handler,
                                     const Lookup& found) const {
  std::string flight_key = request.method;
  flight_key += ' ';
  flight_key += request_class(request);
  flight_key += ' ';
  flight_key += found.header_key;
  if (options.coalesce_wait.count() <= 0 || coalescer.passing(flight_key, now())) {
    return run(request, handler, found);
  }
  detail::Coalescer::Ticket ticket = coalescer.join(flight_key);
  if (ticket.leader) return lead(request, handler, found, flight_key, std::move(ticket));
  return follow(request, handler, found, ticket);
}

Response PageCache::Impl::lead(Request& request, const Handler& handler, const Lookup& found,
                               const std::string& flight_key,
                               detail::Coalescer::Ticket ticket) const {
  detail::LeaderGuard guard(coalescer, flight_key, std::move(ticket));
  // A flight for this page may have finished between our lookup and our join: its page is
  // stored by now, and the request that arrived just after it must be served that page, not
  // call the handler again. So look once more — but only when some flight finished since our
  // lookup (Coalescer::finished()); otherwise none can have stored anything and the miss
  // costs one read of the store. (The guard tells our waiters to look too.)
  const Lookup* current = &found;
  Lookup again;
  if (coalescer.finished() != found.flights_finished) {
    again = lookup(request);
    if (again.hit) return std::move(*again.hit);
    again.fwd = found.fwd;  // the verdict the request met
    current = &again;
  }

  // On a shared store, one process of the fleet runs the handler; the others wait for its page.
  FleetTurn turn;
  if (shared_store()) {
    turn = take_fleet_turn(request, *current);
    if (turn.hit) return std::move(*turn.hit);  // the guard sends our waiters to the store
  }
  // If the handler throws (with no stale page to serve), the guard releases the waiters.
  Called called = call_handler(request, handler, *current);
  if (called.stale) return publish_stale(guard, *current, std::move(*called.stale));
  Response response = std::move(called.response);
  Stored stored;
  try {
    stored = store(request, response, current);
  } catch (const std::exception&) {
    stored = Stored{};
    stored.status = {.fwd = found.fwd};
  }
  detail::Outcome outcome;
  if (stored.shareable) {
    outcome.response = response;  // header fields copied, body shared
    outcome.vary_names = std::move(stored.vary_names);
    outcome.selecting = std::move(stored.selecting);
  } else if (response.status < 500) {
    // Unshareable by its nature (private, Set-Cookie, no-store…): let the next wave pass. A
    // server error is not: the next wave should coalesce behind one call, most of all when the
    // upstream has just come back.
    coalescer.mark_passing(flight_key, now());
  }
  guard.publish(std::move(outcome));
  detail::set_cache_status(response, stored.status);
  answer_preconditions(request, response);
  return response;
}

// The waiters get the leader's stale page too: during an outage, one failing call per wave.
Response PageCache::Impl::publish_stale(detail::LeaderGuard& guard, const Lookup& found,
                                        StaleAnswer stale) const {
  detail::Outcome outcome;
  outcome.response = stale.response;  // header fields copied, body shared
  outcome.vary_names = found.list ? found.list->names : std::vector<std::string>{};
  outcome.selecting = found.stale->meta.selecting;
  outcome.status = stale.status;
  outcome.status->collapsed = true;
  guard.publish(std::move(outcome));
  detail::set_cache_status(stale.response, stale.status);
  return std::move(stale.response);
}

Response PageCache::Impl::follow(Request& request, const Handler& handler, const Lookup& found,
                                 const detail::Coalescer::Ticket& ticket) const {
  std::optional<detail::Outcome> outcome = coalescer.wait(ticket, options.coalesce_wait);
  if (outcome && usable_by(request, *outcome, options.reverse_proxy)) {
    Response response = std::move(*outcome->response);
    if (auto conditional = get_conditional_response(request, response)) {
      response = std::move(*conditional);
    }
    detail::set_cache_status(response, outcome->status
                                           ? *outcome->status
                                           : CacheStatus{.fwd = found.fwd, .collapsed = true});
    return response;
  }
  // The leader failed, overran, or answered for another variant: it may have stored a page
  // since our lookup (after overrunning), so look again rather than call the handler.
  Lookup again = lookup(request);
  if (again.hit) return std::move(*again.hit);
  again.fwd = found.fwd;  // the verdict the request met
  return run(request, handler, again);
}

Response PageCache::Impl::run(Request& request, const Handler& handler, const Lookup& found) const {
  Called called = call_handler(request, handler, found);
  if (called.stale) {
    detail::set_cache_status(called.stale->response, called.stale->status);
    return std::move(called.stale->response);
  }
  Response response = std::move(called.response);
  Stored stored;
  try {
    stored = store(request, response, &found);
  } catch (const std::exception&) {
    stored.status = {.fwd = found.fwd};
  }
  detail::set_cache_status(response, stored.status);
  answer_preconditions(request, response);
  return response;
}

}  // namespace cachekit::http
