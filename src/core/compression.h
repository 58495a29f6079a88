#pragma once
// Optional zstd compression of stored values (CacheOptions::compress_min_bytes).
//
// The stored form of a compressed value is a plain zstd frame, so any client with zstd can read
// it. A stored value is decompressed exactly when it starts with the zstd frame magic; to keep
// that unambiguous, a caller's value that itself starts with the magic is always stored
// compressed (whatever its size), so it comes back byte for byte. Decimal integers are never
// compressed: incr/decr work on the stored text, and other clients' INCR too.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "cachekit/bytes.h"
#include "cachekit/status.h"

namespace cachekit::detail {

// True when `stored` begins with the zstd frame magic (28 B5 2F FD).
[[nodiscard]] bool is_zstd_frame(std::string_view stored) noexcept;

// The form to store `value` in: a zstd frame, or nullopt to store the value as given (below
// `min_bytes`, a decimal integer, compression off with min_bytes 0, or no smaller compressed).
[[nodiscard]] Result<std::optional<std::string>> compress_for_store(std::string_view value,
                                                                    std::size_t min_bytes,
                                                                    int level);

// The value a stored frame holds. kResourceExhausted when it declares (or, for a frame that does
// not declare its size, expands to) more than `max_bytes`, checked before allocating;
// kDataLoss when it is not a whole, valid zstd frame.
[[nodiscard]] Result<Bytes> decompress_stored(std::string_view stored, std::size_t max_bytes);

}  // namespace cachekit::detail
