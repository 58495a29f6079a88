#pragma once
// The stored form of a get_or_refresh value: a header that says when the value stops being
// fresh, when it stops being servable at all, and how long it took to compute, then the
// payload. A plain get() reads it too (Cache::strict_get): the payload while fresh, a miss
// after. The magic starts with a NUL byte and a byte that is not UTF-8, so no text value (and
// no JSON, decimal integer or zstd frame) is mistaken for an envelope.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "cachekit/bytes.h"
#include "cachekit/clock.h"

namespace cachekit::detail {

inline constexpr std::string_view kEnvelopeMagic{
    "\0\xC7"
    "CKR\x01",
    6};  // magic + version 1
inline constexpr std::size_t kEnvelopeHeader = kEnvelopeMagic.size() + 3 * sizeof(std::int64_t);

struct Envelope {
  TimePoint fresh_until;
  TimePoint stale_until;
  std::chrono::milliseconds compute_time{0};
  Bytes payload;
};

inline std::string wrap_envelope(TimePoint fresh_until, TimePoint stale_until,
                                 std::chrono::milliseconds compute_time, std::string_view payload) {
  std::string out(kEnvelopeMagic);
  out.reserve(kEnvelopeHeader + payload.size());
  for (std::int64_t field : {fresh_until.time_since_epoch().count(),
                             stale_until.time_since_epoch().count(), compute_time.count()}) {
    char bytes[sizeof field];
    std::memcpy(bytes, &field, sizeof field);  // host order: every reader is this library
    out.append(bytes, sizeof field);
  }
  return out.append(payload);
}

inline bool is_envelope(std::string_view stored) noexcept {
  return stored.size() >= kEnvelopeHeader && stored.starts_with(kEnvelopeMagic);
}

inline std::optional<Envelope> unwrap_envelope(const Bytes& stored) {
  if (!is_envelope(stored.view())) return std::nullopt;
  std::int64_t fields[3];
  std::memcpy(fields, stored.data() + kEnvelopeMagic.size(), sizeof fields);
  return Envelope{TimePoint(std::chrono::milliseconds(fields[0])),
                  TimePoint(std::chrono::milliseconds(fields[1])),
                  std::chrono::milliseconds(fields[2]), stored.substr(kEnvelopeHeader)};
}

}  // namespace cachekit::detail
