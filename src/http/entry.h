#pragma once
// A stored page: the bytes the page cache writes under a page key.
//
//   "CKP" 0x02                      magic + format version (a different version is a miss)
//   i64 born_ms                     when the response was generated, on the PageCache clock
//   i64 fresh_until_ms              when it stops being fresh
//   i64 stale_while_revalidate_ms   how long after fresh_until it may be served while one
//                                   refresh runs (RFC 5861 §3); 0: never
//   i64 stale_if_error_ms           how long after fresh_until it may stand in for an error
//                                   (RFC 5861 §4); 0: never
//   u64 epoch                       the header list's epoch it was stored under
//   u32 n, n bytes                  the request's values of the Vary headers
//                                   (selecting_values, page_keys.h)
//   u32 status
//   u32 count, count × (u32 n, name, u32 n, value)   the response's header fields, in order
//   u64 n, n bytes                  the body — last, so a hit can view it in place
//
// Integers are little-endian. The body is written once (appended after the metadata) and,
// on a hit, never copied: decode_entry() returns a Response whose body is a substr() of the
// Bytes the cache returned — for the in-process store, the very memory the store holds. So a
// hit allocates for the header fields only, nothing proportional to the body.

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "cachekit/bytes.h"
#include "cachekit/http/message.h"

namespace cachekit::http::detail {

struct EntryMeta {
  std::int64_t born_ms = 0;
  std::int64_t fresh_until_ms = 0;
  std::int64_t stale_while_revalidate_ms = 0;
  std::int64_t stale_if_error_ms = 0;
  std::uint64_t epoch = 0;
  std::string selecting;  // selecting_values() of the request that produced it
};

struct Entry {
  EntryMeta meta;
  Response response;
};

std::string encode_entry(const EntryMeta& meta, const Response& response);
// nullopt when `value` is not a well-formed entry of this version (a corrupt entry is a miss).
std::optional<Entry> decode_entry(const Bytes& value);

}  // namespace cachekit::http::detail
