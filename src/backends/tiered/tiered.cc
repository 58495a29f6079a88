// The two-tier backend: see include/cachekit/backends/tiered.h.
//
// Ordering a fill against an invalidation. A reader that missed locally reads the shared
// entry, then inserts it locally; meanwhile another client may change the entry and its
// invalidation may be applied before the insert, which would leave the old value behind for
// good. So each key belongs to one of kStripes counters, and there is one counter for
// "everything":
//   invalidation:  bump the counter(s), then erase the local copy (or clear the tier);
//   fill:          read the counters, read the shared entry, insert locally, read the
//                  counters again and erase what was inserted if either moved.
// With sequentially consistent atomics, either the invalidation's erase comes after the
// insert (and removes it) or its bump comes before the second read (and the reader removes
// it). A bump for another key of the same stripe only costs a dropped fill.
#include "cachekit/backends/tiered.h"

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <functional>
#include <thread>

namespace cachekit {
namespace {

constexpr std::size_t kStripes = 256;
constexpr std::size_t kCounterSlots = 16;

// The read counters, one cache line per slot and a slot per thread (by a hash of its id):
// threads hitting the local tier at once would otherwise all write one line, and that
// line's traffic would cost more than the hit itself.
class Counters {
 public:
  enum Kind : std::size_t { kLocalHit, kSharedHit, kMiss, kBypassed, kKinds };
  void add(Kind kind) noexcept {
    thread_local const std::size_t slot =
        std::hash<std::thread::id>{}(std::this_thread::get_id()) % kCounterSlots;
    // A load and a store, not a locked add: two threads sharing a slot may lose a count
    // (statistics, not accounting), and a hit costs no bus lock.
    auto& n = slots_[slot].n[kind];
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t total(Kind kind) const noexcept {
    std::uint64_t sum = 0;
    for (const auto& slot : slots_) sum += slot.n[kind].load(std::memory_order_relaxed);
    return sum;
  }

 private:
  struct alignas(64) Slot {
    std::array<std::atomic<std::uint64_t>, kKinds> n{};
  };
  std::array<Slot, kCounterSlots> slots_{};
};
constexpr std::chrono::milliseconds kTtlModeDefault{1000};
constexpr std::chrono::minutes kChangesModeDefault{5};

class TieredBackend final : public Backend, private ChangeListener {
 public:
  TieredBackend(TieredOptions options, std::chrono::milliseconds local_ttl)
      : shared_(std::move(options.shared)),
        local_(make_locmem_backend(options.local)),
        clock_(options.local.clock != nullptr ? options.local.clock : &SystemClock::instance()),
        local_ttl_(local_ttl) {
    const BackendInfo& s = shared_->info();
    info_.name = "tiered";
    info_.stores_values = s.stores_values;
    info_.outlives_process = s.outlives_process;
    info_.supports_keys = s.supports_keys;
    info_.supports_stats = true;
    info_.has_local_copies = true;
    info_.key_policy = s.key_policy;
    info_.max_key_bytes = s.max_key_bytes;
  }
  ~TieredBackend() override { feed_.reset(); }  // no listener call after this

  // Starts the change feed (kChanges): from then on the local tier is used only while it is live.
  Status watch() {
    live_.store(false);
    auto feed = shared_->watch_changes(*this);
    if (!feed.ok()) return feed.status();
    feed_ = std::move(feed).value();
    changes_ = true;
    return {};
  }

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }

  Result<std::optional<Bytes>> get(std::string_view key) override {
    if (live_.load()) {
      auto local = local_->get(key);
      if (local.ok() && local->has_value()) {
        counters_.add(Counters::kLocalHit);
        return local;
      }
    } else {
      counters_.add(Counters::kBypassed);
      return count(shared_->get(key));
    }
    const Marks marks = mark(key);
    auto entry = shared_->get_entry(key);
    if (!entry.ok()) return entry.status();
    if (!entry->has_value()) {
      counters_.add(Counters::kMiss);
      return std::optional<Bytes>();
    }
    counters_.add(Counters::kSharedHit);
    fill(key, **entry, marks);
    return std::optional<Bytes>(std::move((*entry)->value));
  }

  // A local copy, or nullopt: a local miss (or a feed that is down) needs the shared store.
  std::optional<Result<std::optional<Bytes>>> get_if_in_process(std::string_view key) override {
    if (!live_.load()) return std::nullopt;
    auto local = local_->get(key);
    if (!local.ok() || !local->has_value()) return std::nullopt;
    counters_.add(Counters::kLocalHit);
    return local;
  }

  Status set(std::string_view key, std::string_view value, Expiry expiry) override {
    return dropping(key, shared_->set(key, value, expiry));
  }
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override {
    return dropping(key, shared_->add(key, value, expiry));
  }
  Result<bool> touch(std::string_view key, Expiry expiry) override {
    return dropping(key, shared_->touch(key, expiry));
  }
  Result<bool> erase(std::string_view key) override { return dropping(key, shared_->erase(key)); }
  Result<bool> erase_if_value(std::string_view key, std::string_view expected) override {
    return dropping(key, shared_->erase_if_value(key, expected));
  }
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override {
    return dropping(key, shared_->incr(key, delta));
  }
  Status clear() override {
    Status s = shared_->clear();
    drop_all();
    return s;
  }
  Result<Ttl> ttl(std::string_view key) override { return shared_->ttl(key); }
  Result<bool> contains(std::string_view key) override {
    if (live_.load()) {
      auto local = local_->contains(key);
      if (local.ok() && *local) return true;
    }
    return shared_->contains(key);
  }

  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override;
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items,
                                            Expiry expiry) override {
    auto failed = shared_->set_many(items, expiry);
    for (const auto& item : items) drop(item.key);
    return failed;
  }
  Result<std::size_t> erase_many(std::span<const std::string_view> keys) override {
    auto erased = shared_->erase_many(keys);
    for (std::string_view key : keys) drop(key);
    return erased;
  }
  Result<std::vector<std::string>> keys(std::string_view pattern) override {
    return shared_->keys(pattern);
  }
  Result<StatPairs> stats() override;

 private:
  struct Marks {
    std::uint64_t all, stripe;
  };
  static std::size_t stripe_of(std::string_view key) {
    return std::hash<std::string_view>{}(key) % kStripes;
  }
  [[nodiscard]] Marks mark(std::string_view key) const {
    return {everything_.load(), stripes_[stripe_of(key)].load()};
  }
  [[nodiscard]] bool moved(std::string_view key, Marks marks) const {
    return everything_.load() != marks.all || stripes_[stripe_of(key)].load() != marks.stripe ||
           !live_.load();
  }

  void fill(std::string_view key, const StoredEntry& entry, Marks marks) {
    const TimePoint now = clock_->now();
    TimePoint until = now + local_ttl_;
    if (entry.ttl.expires()) until = std::min(until, now + entry.ttl.remaining());
    (void)local_->set(key, entry.value.view(), Expiry::at(until));
    if (moved(key, marks)) {
      (void)local_->erase(key);
      fills_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void drop(std::string_view key) {
    stripes_[stripe_of(key)].fetch_add(1);
    (void)local_->erase(key);
  }
  void drop_all() {
    everything_.fetch_add(1);
    (void)local_->clear();
  }
  // The shared write's outcome, after dropping the local copy whatever it was: a failed
  // write may still have landed (a timeout after the server applied it).
  template <class R>
  R dropping(std::string_view key, R result) {
    drop(key);
    return result;
  }
  Result<std::optional<Bytes>> count(Result<std::optional<Bytes>> result) {
    if (result.ok()) counters_.add(result->has_value() ? Counters::kSharedHit : Counters::kMiss);
    return result;
  }

  // ChangeListener (the feed's thread).
  void changed(std::string_view key) override {
    invalidations_.fetch_add(1, std::memory_order_relaxed);
    drop(key);
  }
  void all_changed() override {
    invalidations_.fetch_add(1, std::memory_order_relaxed);
    drop_all();
  }
  void feed_live(bool live) override {
    if (!live) live_.store(false);
    drop_all();
    if (live) live_.store(true);
  }

  std::shared_ptr<Backend> shared_;
  std::shared_ptr<Backend> local_;
  const Clock* clock_;
  const std::chrono::milliseconds local_ttl_;
  BackendInfo info_;
  bool changes_ = false;
  std::atomic<bool> live_{true};
  std::atomic<std::uint64_t> everything_{0};
  std::array<std::atomic<std::uint64_t>, kStripes> stripes_{};
  Counters counters_;
  std::atomic<std::uint64_t> invalidations_{0}, fills_dropped_{0};
  std::unique_ptr<ChangeFeed> feed_;  // last: stopped first
};

Result<std::vector<std::optional<Bytes>>> TieredBackend::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<Bytes>> values(keys.size());
  std::vector<std::string_view> wanted;
  std::vector<std::size_t> where;
  const bool live = live_.load();
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (live) {
      auto local = local_->get(keys[i]);
      if (local.ok() && local->has_value()) {
        values[i] = std::move(*local);
        counters_.add(Counters::kLocalHit);
        continue;
      }
    }
    wanted.push_back(keys[i]);
    where.push_back(i);
  }
  if (wanted.empty()) return values;
  auto fetched = shared_->get_many(wanted);
  if (!fetched.ok()) return fetched.status();
  for (std::size_t j = 0; j < wanted.size(); ++j) {
    auto& value = (*fetched)[j];
    counters_.add(value.has_value() ? Counters::kSharedHit : Counters::kMiss);
    values[where[j]] = std::move(value);
  }
  return values;
}

Result<StatPairs> TieredBackend::stats() {
  auto n = [](const std::atomic<std::uint64_t>& v) { return std::to_string(v.load()); };
  auto total = [&](Counters::Kind kind) { return std::to_string(counters_.total(kind)); };
  StatPairs out{{"coherence", changes_ ? "changes" : "ttl"},
                {"feed_live", changes_ ? (live_.load() ? "yes" : "no") : "n/a"},
                {"local_ttl_ms", std::to_string(local_ttl_.count())},
                {"local_hits", total(Counters::kLocalHit)},
                {"shared_hits", total(Counters::kSharedHit)},
                {"shared_misses", total(Counters::kMiss)},
                {"bypassed_reads", total(Counters::kBypassed)},
                {"invalidations", n(invalidations_)},
                {"fills_dropped", n(fills_dropped_)}};
  if (auto local = local_->stats(); local.ok()) {
    for (auto& [name, value] : *local) out.emplace_back("local." + name, std::move(value));
  }
  if (auto shared = shared_->stats(); shared.ok()) {
    for (auto& [name, value] : *shared) out.emplace_back("shared." + name, std::move(value));
  }
  return out;
}

}  // namespace

Result<std::shared_ptr<Backend>> make_tiered_backend(TieredOptions options) {
  if (!options.shared) {
    return invalid_argument_error("the tiered backend needs a shared backend");
  }
  if (options.local_ttl && options.local_ttl->count() <= 0) {
    return invalid_argument_error(
        fmt::format("tiered: local_ttl must be positive, got {} ms", options.local_ttl->count()));
  }
  bool changes =
      options.coherence == TierCoherence::kChanges ||
      (options.coherence == TierCoherence::kAuto && options.shared->info().has_change_feed);
  auto local_ttl = options.local_ttl.value_or(
      changes ? std::chrono::milliseconds(kChangesModeDefault) : kTtlModeDefault);
  auto backend = std::make_shared<TieredBackend>(std::move(options), local_ttl);
  if (changes) {
    if (Status s = backend->watch(); !s.ok()) return s;
  }
  return std::shared_ptr<Backend>(std::move(backend));
}

}  // namespace cachekit
