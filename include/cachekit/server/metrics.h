#pragma once
// Metrics: the counters and the latency histogram behind the server's /metrics endpoint, in the
// Prometheus text exposition format (version 0.0.4).
//
// What is counted:
//   cachekit_http_requests_total{route,status}        every answered request
//   cachekit_http_request_duration_seconds            a latency histogram (all requests)
//   cachekit_page_cache_requests_total{cache,result}  page-cache outcomes (hit, miss, collapsed,
//                                                     bypass): this server's page cache's from
//                                                     its CacheStatus value, other caches' from
//                                                     their Cache-Status members
//   cachekit_page_cache_stores_total{cache}           responses the page cache stored
//   cachekit_backend_errors_total{cache}              Cache::stats().errors of watched caches
// plus whatever samples the caller passes to render().
//
// Recording never locks and never allocates: counters are relaxed atomics (the hot ones striped
// over cache lines), the request table is a fixed array indexed by route and status, and cache
// names live in a small table that is only locked when a new name is first seen.
//
// Thread-safety: every method may be called concurrently.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/http/cache_status.h"

namespace cachekit {
class Cache;
}

namespace cachekit::server {

// A monotonically increasing count, striped over cache lines so that threads adding to it at
// the same time do not bounce one line between cores. add() is wait-free.
class Counter {
 public:
  void add(std::uint64_t n = 1) noexcept;
  // The sum over the stripes (a racy but monotonic read).
  [[nodiscard]] std::uint64_t value() const noexcept;

 private:
  struct alignas(64) Stripe {
    std::atomic<std::uint64_t> count{0};
  };
  std::array<Stripe, 8> stripes_{};
};

// A histogram with fixed upper bounds (an implicit +Inf bucket follows the last). observe() is
// wait-free: one bucket, the sum and the count are relaxed atomics.
class Histogram {
 public:
  // `upper_bounds` must be sorted ascending (std::invalid_argument otherwise: a startup error).
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double value) noexcept;

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  [[nodiscard]] Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> sum_billionths_{0};  // fixed point: exact under concurrency
  std::atomic<std::uint64_t> count_{0};
};

// How a page-cache outcome is counted.
enum class CacheOutcome : std::uint8_t { kHit, kMiss, kCollapsed, kBypass, kStale, kStaleError };

// A stale page served while revalidating is kStale, one served in place of an error
// kStaleError; a hit is kHit, a collapsed miss kCollapsed, a miss with a detail (not stored, or not
// cacheable at all) kBypass, any other miss kMiss.
[[nodiscard]] CacheOutcome outcome_of(const http::CacheStatus& status) noexcept;

// One member of a Cache-Status header written by another cache (an upstream's in reverse-proxy
// mode, or a handler's): the cache's name and what the member says, as a value.
struct CacheStatusMember {
  std::string_view cache{};  // the cache's name: the member's first token
  // hit / stored / collapsed (any parameter containing "collapsed") / detail (a view into the
  // member); an unknown fwd reads as kMiss, ttl is not read.
  http::CacheStatus status{};
};

// Reads one list member of a Cache-Status value. nullopt for an empty member or name.
[[nodiscard]] std::optional<CacheStatusMember> parse_cache_status_member(
    std::string_view member) noexcept;

// One more unlabelled value the caller wants exposed next to these metrics (the server's
// connection count, queue depth, ...).
struct Sample {
  std::string_view name{};
  std::string_view help{};
  std::string_view type = "gauge";  // "gauge" or "counter"
  double value = 0;
};

class Metrics {
 public:
  // One label per route index; requests recorded with an index past the end count under
  // route="unmatched".
  explicit Metrics(std::vector<std::string> route_labels);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Counts one answered request. Statuses outside 100..599 count as 500.
  void record_request(std::size_t route, int status, std::chrono::nanoseconds latency) noexcept;
  // Counts one page-cache outcome of the cache called `cache` (and a store when it stored).
  // At most kMaxCaches distinct cache names are tracked; later ones count as cache="other".
  void record_cache_status(std::string_view cache, const http::CacheStatus& status) noexcept;
  // Counts the outcomes in Cache-Status members that arrived as text (a comma-separated list
  // from an upstream or a handler), each under its cache's name.
  void record_cache_status(std::string_view header_value) noexcept;
  // Exposes `cache`'s counters under `alias` (cache="alias"): backend errors, collapsed waits,
  // lease waits and takeovers, stale values served (reason="revalidate"/"error"), early
  // refreshes, refreshes and refresh failures. `cache` must outlive this object.
  void watch_cache(std::string alias, const Cache& cache);

  // The number of requests recorded for (route, status); for tests and dashboards.
  [[nodiscard]] std::uint64_t requests(std::size_t route, int status) const noexcept;
  // The number of page-cache outcomes recorded for a cache name (0 when never seen).
  [[nodiscard]] std::uint64_t cache_outcomes(std::string_view cache,
                                             CacheOutcome outcome) const noexcept;
  [[nodiscard]] std::uint64_t cache_stores(std::string_view cache) const noexcept;

  // The whole exposition text, with `extra` appended.
  [[nodiscard]] std::string render(std::span<const Sample> extra = {}) const;

  static constexpr std::size_t kMaxCaches = 32;

 private:
  struct CacheSlot;
  CacheSlot* slot_for(std::string_view cache) noexcept;
  [[nodiscard]] const CacheSlot* find_slot(std::string_view cache) const noexcept;
  void render_requests(std::string& out) const;
  void render_latency(std::string& out) const;
  void render_caches(std::string& out) const;
  void render_watched(std::string& out) const;

  std::vector<std::string> route_labels_;
  // (route_labels_.size() + 1) rows of kStatuses counters.
  std::unique_ptr<std::atomic<std::uint64_t>[]> requests_;
  Histogram latency_;
  std::unique_ptr<CacheSlot[]> caches_;
  std::atomic<std::size_t> cache_count_{0};
  std::mutex cache_insert_mutex_;
  mutable std::mutex watched_mutex_;
  std::vector<std::pair<std::string, const Cache*>> watched_;
};

}  // namespace cachekit::server
