#include "cachekit/server/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <stdexcept>
#include <thread>

#include "cachekit/cache.h"
#include "core/text.h"

namespace cachekit::server {
namespace {

constexpr int kFirstStatus = 100;
constexpr std::size_t kStatuses = 500;  // 100..599
constexpr std::size_t kOutcomes = 6;
constexpr std::string_view kOther = "other";

constexpr std::array<std::string_view, kOutcomes> kOutcomeNames = {
    "hit", "miss", "collapsed", "bypass", "stale", "stale_error"};

// Request latency buckets, in seconds: 100 µs (a cache hit on loopback) to 10 s.
std::vector<double> latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

// Each thread keeps one stripe for its whole life; hashing the id spreads io threads apart.
std::size_t my_stripe() noexcept {
  thread_local const std::size_t stripe = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return stripe;
}

// Prometheus label values escape backslash, double quote and newline.
std::string escape_label(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

void header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

// ---- Counter ----

void Counter::add(std::uint64_t n) noexcept {
  stripes_[my_stripe() % stripes_.size()].count.fetch_add(n, std::memory_order_relaxed);
}

std::uint64_t Counter::value() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : stripes_) sum += s.count.load(std::memory_order_relaxed);
  return sum;
}

// ---- Histogram ----

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end())) {
    throw std::invalid_argument("histogram bounds must be sorted");
  }
}

void Histogram::observe(double value) noexcept {
  // Prometheus buckets are "less than or equal": lower_bound finds the first bound >= value.
  auto at = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  buckets_[static_cast<std::size_t>(at)].fetch_add(1, std::memory_order_relaxed);
  double billionths = std::max(0.0, value) * 1e9;
  sum_billionths_.fetch_add(static_cast<std::uint64_t>(std::llround(billionths)),
                            std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.upper_bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // The count is the +Inf bucket, so a scrape racing an observe() never shows count < +Inf.
  s.count = running;
  s.sum = static_cast<double>(sum_billionths_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

// ---- Cache-Status ----

CacheOutcome outcome_of(const http::CacheStatus& status) noexcept {
  if (status.stale == http::CacheStatus::Stale::kWhileRevalidate) return CacheOutcome::kStale;
  if (status.stale == http::CacheStatus::Stale::kIfError) return CacheOutcome::kStaleError;
  if (status.is_hit()) return CacheOutcome::kHit;
  if (status.collapsed) return CacheOutcome::kCollapsed;
  if (!status.detail.empty()) return CacheOutcome::kBypass;
  return CacheOutcome::kMiss;
}

std::optional<CacheStatusMember> parse_cache_status_member(std::string_view member) noexcept {
  member = text::trim(member);
  if (member.empty()) return std::nullopt;
  CacheStatusMember result;
  auto semicolon = member.find(';');
  result.cache = text::trim(member.substr(0, semicolon));
  if (result.cache.empty()) return std::nullopt;
  result.status.fwd = http::CacheStatus::Fwd::kMiss;
  while (semicolon != std::string_view::npos) {
    member.remove_prefix(semicolon + 1);
    semicolon = member.find(';');
    std::string_view param = text::trim(member.substr(0, semicolon));
    if (param == "hit") result.status.fwd = http::CacheStatus::Fwd::kNone;
    result.status.stored = result.status.stored || param == "stored";
    result.status.collapsed =
        result.status.collapsed || param.find("collapsed") != std::string_view::npos;
    // An empty "detail=" still says the response was not stored: keep the whole parameter.
    if (param.starts_with("detail="))
      result.status.detail = param.size() > 7 ? param.substr(7) : param;
  }
  return result;
}

// ---- Metrics ----

struct Metrics::CacheSlot {
  std::string name;  // written once, before cache_count_ publishes the slot
  std::array<Counter, kOutcomes> outcomes;
  Counter stores;
};

Metrics::Metrics(std::vector<std::string> route_labels)
    : route_labels_(std::move(route_labels)),
      requests_(
          std::make_unique<std::atomic<std::uint64_t>[]>((route_labels_.size() + 1) * kStatuses)),
      latency_(latency_buckets()),
      caches_(std::make_unique<CacheSlot[]>(kMaxCaches)) {
  route_labels_.emplace_back("unmatched");
  // The last slot is reserved for names beyond the limit, so it is always present.
  caches_[kMaxCaches - 1].name = kOther;
}

Metrics::~Metrics() = default;

void Metrics::record_request(std::size_t route, int status,
                             std::chrono::nanoseconds latency) noexcept {
  route = std::min(route, route_labels_.size() - 1);
  if (status < kFirstStatus || status >= kFirstStatus + static_cast<int>(kStatuses)) status = 500;
  requests_[route * kStatuses + static_cast<std::size_t>(status - kFirstStatus)].fetch_add(
      1, std::memory_order_relaxed);
  latency_.observe(std::chrono::duration<double>(latency).count());
}

const Metrics::CacheSlot* Metrics::find_slot(std::string_view cache) const noexcept {
  std::size_t count = cache_count_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < count; ++i) {
    if (caches_[i].name == cache) return &caches_[i];
  }
  if (cache == kOther) return &caches_[kMaxCaches - 1];
  return nullptr;
}

// Readers scan the published prefix without a lock; a new name takes the mutex once, fills
// the next slot and publishes it with a release store. Names are never removed.
Metrics::CacheSlot* Metrics::slot_for(std::string_view cache) noexcept {
  if (auto* found = find_slot(cache)) return const_cast<CacheSlot*>(found);
  std::lock_guard lock(cache_insert_mutex_);
  if (auto* found = find_slot(cache)) return const_cast<CacheSlot*>(found);
  std::size_t count = cache_count_.load(std::memory_order_relaxed);
  if (count >= kMaxCaches - 1) return &caches_[kMaxCaches - 1];
  try {
    caches_[count].name = std::string(cache);
  } catch (...) {  // out of memory: count it as "other" rather than throw from a noexcept path
    return &caches_[kMaxCaches - 1];
  }
  cache_count_.store(count + 1, std::memory_order_release);
  return &caches_[count];
}

void Metrics::record_cache_status(std::string_view cache,
                                  const http::CacheStatus& status) noexcept {
  CacheSlot* slot = slot_for(cache);
  slot->outcomes[static_cast<std::size_t>(outcome_of(status))].add();
  if (status.stored) slot->stores.add();
}

void Metrics::record_cache_status(std::string_view header_value) noexcept {
  while (!header_value.empty()) {
    auto comma = header_value.find(',');
    if (auto member = parse_cache_status_member(header_value.substr(0, comma))) {
      record_cache_status(member->cache, member->status);
    }
    if (comma == std::string_view::npos) break;
    header_value.remove_prefix(comma + 1);
  }
}

void Metrics::watch_cache(std::string alias, const Cache& cache) {
  std::lock_guard lock(watched_mutex_);
  watched_.emplace_back(std::move(alias), &cache);
}

std::uint64_t Metrics::requests(std::size_t route, int status) const noexcept {
  route = std::min(route, route_labels_.size() - 1);
  if (status < kFirstStatus || status >= kFirstStatus + static_cast<int>(kStatuses)) return 0;
  return requests_[route * kStatuses + static_cast<std::size_t>(status - kFirstStatus)].load(
      std::memory_order_relaxed);
}

std::uint64_t Metrics::cache_outcomes(std::string_view cache, CacheOutcome outcome) const noexcept {
  const CacheSlot* slot = find_slot(cache);
  return slot == nullptr ? 0 : slot->outcomes[static_cast<std::size_t>(outcome)].value();
}

std::uint64_t Metrics::cache_stores(std::string_view cache) const noexcept {
  const CacheSlot* slot = find_slot(cache);
  return slot == nullptr ? 0 : slot->stores.value();
}

void Metrics::render_requests(std::string& out) const {
  header(out, "cachekit_http_requests_total", "HTTP requests answered, by route and status.",
         "counter");
  for (std::size_t route = 0; route < route_labels_.size(); ++route) {
    std::string label;  // escaped lazily: most routes have only a few statuses
    for (std::size_t s = 0; s < kStatuses; ++s) {
      auto n = requests_[route * kStatuses + s].load(std::memory_order_relaxed);
      if (n == 0) continue;
      if (label.empty()) label = escape_label(route_labels_[route]);
      fmt::format_to(std::back_inserter(out),
                     "cachekit_http_requests_total{{route=\"{}\",status=\"{}\"}} {}\n", label,
                     static_cast<int>(s) + kFirstStatus, n);
    }
  }
}

void Metrics::render_latency(std::string& out) const {
  constexpr std::string_view name = "cachekit_http_request_duration_seconds";
  header(out, name, "Time from a complete request to its response being written.", "histogram");
  Histogram::Snapshot s = latency_.snapshot();
  for (std::size_t i = 0; i < s.upper_bounds.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"{}\"}} {}\n", name, s.upper_bounds[i],
                   s.cumulative[i]);
  }
  fmt::format_to(std::back_inserter(out), "{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n",
                 name, s.count, name, s.sum, name, s.count);
}

void Metrics::render_caches(std::string& out) const {
  std::vector<const CacheSlot*> slots;
  std::size_t count = cache_count_.load(std::memory_order_acquire);
  for (std::size_t i = 0; i < count; ++i) slots.push_back(&caches_[i]);
  slots.push_back(&caches_[kMaxCaches - 1]);
  header(out, "cachekit_page_cache_requests_total",
         "Page-cache outcomes by cache (from Cache-Status): hit, miss, collapsed, bypass, "
         "stale (while revalidating), stale_error (in place of an error).",
         "counter");
  for (const CacheSlot* slot : slots) {
    for (std::size_t o = 0; o < kOutcomes; ++o) {
      auto n = slot->outcomes[o].value();
      if (slot == &caches_[kMaxCaches - 1] && n == 0) continue;
      fmt::format_to(std::back_inserter(out),
                     "cachekit_page_cache_requests_total{{cache=\"{}\",result=\"{}\"}} {}\n",
                     escape_label(slot->name), kOutcomeNames[o], n);
    }
  }
  header(out, "cachekit_page_cache_stores_total", "Responses the page cache stored.", "counter");
  for (const CacheSlot* slot : slots) {
    auto n = slot->stores.value();
    if (slot == &caches_[kMaxCaches - 1] && n == 0) continue;
    fmt::format_to(std::back_inserter(out), "cachekit_page_cache_stores_total{{cache=\"{}\"}} {}\n",
                   escape_label(slot->name), n);
  }
  render_watched(out);
}

// The watched caches' counters: store errors, and the loads of get_or_set / get_or_refresh
// (single-flight waits, fleet leases, stale values served, refreshes).
void Metrics::render_watched(std::string& out) const {
  std::vector<std::pair<std::string, CacheStats>> stats;
  {
    std::lock_guard lock(watched_mutex_);
    for (const auto& [alias, cache] : watched_)
      stats.emplace_back(escape_label(alias), cache->stats());
  }
  struct Counter {
    std::string_view name, help;
    std::uint64_t CacheStats::*field;
  };
  static constexpr Counter kCounters[] = {
      {"cachekit_backend_errors_total",
       "Failed cache store calls (Cache::stats().errors) of the caches the server watches.",
       &CacheStats::errors},
      {"cachekit_collapsed_waits_total",
       "get_or_set callers that waited for another thread's load of the same key.",
       &CacheStats::collapsed_waits},
      {"cachekit_lease_waits_total", "Loads that found another process's lease and waited.",
       &CacheStats::lease_waits},
      {"cachekit_lease_takeovers_total",
       "Leases taken after waiting on another holder's (it died or gave up).",
       &CacheStats::lease_takeovers},
      {"cachekit_early_refreshes_total", "Refreshes started before fresh-until (XFetch).",
       &CacheStats::early_refreshes},
      {"cachekit_refreshes_total", "Background refreshes run.", &CacheStats::refreshes},
      {"cachekit_refresh_failures_total", "Background refreshes whose loader failed.",
       &CacheStats::refresh_failures},
      {"cachekit_refreshes_skipped_total",
       "Background refreshes left to another process that held the key's lease.",
       &CacheStats::refreshes_skipped},
  };
  for (const Counter& c : kCounters) {
    header(out, c.name, c.help, "counter");
    for (const auto& [alias, s] : stats) {
      fmt::format_to(std::back_inserter(out), "{}{{cache=\"{}\"}} {}\n", c.name, alias, s.*c.field);
    }
  }
  header(out, "cachekit_stale_served_total",
         "Stale values served, by reason: revalidate (a refresh was running), error (the loader "
         "failed).",
         "counter");
  for (const auto& [alias, s] : stats) {
    fmt::format_to(std::back_inserter(out),
                   "cachekit_stale_served_total{{cache=\"{}\",reason=\"revalidate\"}} {}\n"
                   "cachekit_stale_served_total{{cache=\"{}\",reason=\"error\"}} {}\n",
                   alias, s.stale_served_revalidate, alias, s.stale_served_error);
  }
}

std::string Metrics::render(std::span<const Sample> extra) const {
  std::string out;
  out.reserve(4096);
  render_requests(out);
  render_latency(out);
  render_caches(out);
  for (const Sample& sample : extra) {
    header(out, sample.name, sample.help, sample.type);
    fmt::format_to(std::back_inserter(out), "{} {}\n", sample.name, sample.value);
  }
  return out;
}

}  // namespace cachekit::server
