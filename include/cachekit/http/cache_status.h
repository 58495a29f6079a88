#pragma once
// CacheStatus: what the page cache did with one request, as a value. The page cache renders it
// once into its `Cache-Status` member (RFC 9211) for clients, and hands the same value on the
// Response (Response::cache_status) to whoever counts outcomes, so nothing parses the text it
// built. page_cache.h lists every member the page cache emits.
//
// A value type: copy it freely; the functions here are pure and thread-safe.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cachekit::http {

struct CacheStatus {
  // Why the request went forward to the handler (RFC 9211 `fwd`), or kNone for a hit.
  enum class Fwd : std::uint8_t {
    kNone,      // a hit: nothing went forward
    kUriMiss,   // nothing stored for the URI
    kMiss,      // the URI is known, this variant was not stored
    kVaryMiss,  // the variant key matched another request's header values
    kStale,     // the stored response had expired
    kRequest,   // a stored response exists but this request (Authorization) may not use it
    kMethod,    // not GET/HEAD
    kBypass,    // the request cannot be keyed (bad scheme/Host)
  };

  // A stored response served past its freshness (RFC 5861).
  enum class Stale : std::uint8_t {
    kNo,
    kWhileRevalidate,  // at once, while one refresh runs in the background
    kIfError,          // in place of the handler's error (it threw, or answered 5xx)
  };

  Fwd fwd = Fwd::kUriMiss;
  Stale stale = Stale::kNo;
  // The status the handler answered when a stale response replaced it (`fwd-status=N`).
  std::optional<int> fwd_status{};
  bool stored = false;     // the response was written to the cache (`stored`)
  bool collapsed = false;  // answered with a concurrent miss's response (`collapsed`)
  // Seconds of freshness left (`ttl=N`): on a hit, and on a response that was stored;
  // negative on a stale response (how long ago it stopped being fresh).
  std::optional<std::int64_t> ttl{};
  // Why the response was not stored, or what else happened (`detail=`): a token with static
  // storage duration (cache_policy.h's reasons, "invalidated", "invalid-host",
  // "stale-while-revalidate", "stale-if-error"), or "".
  std::string_view detail{};

  [[nodiscard]] static CacheStatus hit(std::int64_t ttl) noexcept {
    return {.fwd = Fwd::kNone, .ttl = ttl};
  }
  [[nodiscard]] bool is_hit() const noexcept { return fwd == Fwd::kNone; }
  // A stale response served at once while a background refresh runs: RFC 9211's `hit` (the
  // handler was not called) with a negative ttl.
  [[nodiscard]] static CacheStatus stale_while_revalidate(std::int64_t ttl) noexcept {
    return {.fwd = Fwd::kNone,
            .stale = Stale::kWhileRevalidate,
            .ttl = ttl,
            .detail = "stale-while-revalidate"};
  }
  // A stale response served because the handler failed (`fwd_status`: its 5xx; nullopt: it
  // threw).
  [[nodiscard]] static CacheStatus stale_if_error(std::int64_t ttl,
                                                  std::optional<int> fwd_status) noexcept {
    return {.fwd = Fwd::kStale,
            .stale = Stale::kIfError,
            .fwd_status = fwd_status,
            .ttl = ttl,
            .detail = "stale-if-error"};
  }
  bool operator==(const CacheStatus&) const = default;
};

// The name this cache gives itself in its Cache-Status member.
inline constexpr std::string_view kCacheStatusName = "cachekit";

// The `fwd` token of a reason ("uri-miss", "vary-miss", ...); "" for kNone.
[[nodiscard]] std::string_view fwd_token(CacheStatus::Fwd fwd) noexcept;

// The member this cache adds to the Cache-Status header, e.g. "cachekit; hit; ttl=30" or
// "cachekit; fwd=uri-miss; stored; ttl=300" (page_cache.h lists them all).
[[nodiscard]] std::string render_cache_status(const CacheStatus& status);

}  // namespace cachekit::http
