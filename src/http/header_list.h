#pragma once
// The header-list entry ("cache_header" key): which request headers select this URI's
// variants, plus the bookkeeping that makes invalidation of every variant reliable.
//
// Django stores only the sorted names. That makes "delete every variant of a URI" impossible
// without listing keys: deleting the header list hides the variants only until the next
// response re-learns it, and then old variants (other Accept-Language values, say) come back.
// So the entry also carries an epoch — a random number minted when the list is (re)created —
// and every page entry records the epoch it was stored under; a page whose epoch differs from
// the current list's is a miss. Invalidation deletes the list, the next store mints a new
// epoch, and no older variant is ever served again, on any backend.
//
// `until` (ms since the epoch) is when the list expires; a re-learn keeps the later of the
// old and new expiry, so a short-lived variant cannot hide a long-lived one.
//
// Stored as lines, readable by tools and parsed without allocating a DOM (a hit reads this
// entry every time, and a JSON parser was a quarter of the hit's cost):
//   v1 <epoch: 16 hex> <until: ms since the epoch>
//   HTTP_ACCEPT_LANGUAGE
//   HTTP_COOKIE
// Names are tokens (vary_header_list() refuses anything else), so they cannot contain '\n'.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/cache.h"

namespace cachekit::http::detail {

struct HeaderList {
  std::vector<std::string> names;  // sorted CGI names (HTTP_X_Y)
  std::uint64_t epoch = 0;
  std::int64_t until_ms = 0;
};

std::string encode_header_list(const HeaderList& list);
// nullopt for anything that is not a well-formed version-1 entry (a corrupt entry is a miss).
std::optional<HeaderList> decode_header_list(std::string_view bytes);

// A fresh random epoch (never 0).
std::uint64_t new_epoch();

// Learns `names` for `header_key`: keeps `existing`'s epoch when its names are the same, else
// mints one; extends the expiry to cover `lifetime` from `now`; writes it (fail open). Returns
// the list as stored (or as it would have been, if the write failed).
HeaderList learn_header_list(Cache& cache, const std::string& header_key,
                             std::vector<std::string> names,
                             const std::optional<HeaderList>& existing,
                             std::chrono::milliseconds lifetime, TimePoint now);

// Reads and decodes the header list; nullopt when missing, corrupt, or the store failed.
std::optional<HeaderList> read_header_list(const Cache& cache, const std::string& header_key);

}  // namespace cachekit::http::detail
