#pragma once
// RefreshPolicy: how Cache::get_or_refresh keeps a key fresh — stale-while-revalidate,
// stale-if-error (RFC 5861's two grace windows, for the low-level API) and probabilistic early
// refresh (XFetch, Vattani et al., "Optimal Probabilistic Cache Stampede Prevention", 2015).
//
//   cachekit::RefreshPolicy policy{.fresh_for = 60s, .stale_while_revalidate = 30s,
//                                  .stale_if_error = 10min, .early_refresh_beta = 1.0};
//   cachekit::Bytes quote = cache.get_or_refresh("quote", [] { return fetch_quote(); }, policy);
//
// The timeline of a value stored at t (its loader took δ):
//   [t, t + fresh_for)                  fresh: returned as is (XFetch may refresh it early)
//   [fresh-until, + stale_while_revalidate)   stale: returned AT ONCE while one caller of the
//                                        fleet refreshes it in the background
//   [fresh-until, + stale_if_error)     stale: returned only when the loader fails
//   stale-until = fresh-until + max(stale_while_revalidate, stale_if_error): the store's expiry.

#include <chrono>

namespace cachekit {

struct RefreshPolicy {
  // How long a loaded value is fresh (at least 1 ms).
  std::chrono::milliseconds fresh_for = std::chrono::seconds(300);
  // After fresh-until, how long the stale value is served at once while a background refresh
  // runs (0: off — a stale value is then reloaded in the foreground).
  std::chrono::milliseconds stale_while_revalidate{0};
  // After fresh-until, how long the stale value is served when the loader throws (0: off — the
  // loader's exception reaches the caller).
  std::chrono::milliseconds stale_if_error{0};
  // XFetch: a fresh value is refreshed early, in the background, when
  // now − δ·β·ln(rand()) ≥ fresh-until, δ being the loader's measured time. 0 turns it off;
  // 1 is the paper's choice; larger refreshes earlier.
  double early_refresh_beta = 0.0;
};

}  // namespace cachekit
