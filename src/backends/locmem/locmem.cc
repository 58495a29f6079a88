#include "cachekit/backends/locmem.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "backends/locmem/locmem_backend.h"

namespace cachekit::locmem_internal {
namespace {

constexpr std::size_t kMaxKeyBytes = std::numeric_limits<std::uint16_t>::max();
constexpr std::size_t kMaxValueBytes = std::numeric_limits<std::uint32_t>::max();
constexpr unsigned kMaxShards = 1024;
constexpr unsigned kMaxAutoShards = 64;
constexpr std::size_t kMinBytesPerAutoShard = std::size_t{1} << 20;
constexpr std::uint32_t kInitialBuckets = 16;
constexpr std::size_t kIncrValueCapacity = 20;  // "-9223372036854775808"

// Times as unsigned epoch ms. Instants before 1970 clamp to 0 (long expired for any real
// clock) and those past the 48-bit range to just below "never".
std::uint64_t to_ms(std::int64_t ms) noexcept {
  return static_cast<std::uint64_t>(std::clamp<std::int64_t>(ms, 0, kNeverMs - 1));
}
std::uint64_t to_ms(Expiry e) noexcept { return e.is_never() ? kNeverMs : to_ms(e.epoch_ms()); }
Expiry from_ms(std::uint64_t ms) noexcept {
  return ms == kNeverMs ? Expiry::never() : Expiry::from_epoch_ms(static_cast<std::int64_t>(ms));
}
std::uint64_t now_ms(const Clock& clock) noexcept {
  return to_ms(clock.now().time_since_epoch().count());
}
TimePoint time_of(std::uint64_t ms) noexcept {
  return TimePoint(std::chrono::milliseconds(static_cast<std::int64_t>(ms)));
}

// Shard count: a power of two so a key's shard is a mask of its hash. Automatic: one shard
// per 64 entries of max_entries, 1..64 (so Django's default of 300 gets 4 shards, and small
// caches one, which is exact LRU), and never less than 1 MiB of max_bytes per shard so that a
// bounded cache can still take large values. An explicit count is rounded up to a power of
// two, at most 1024, and lowered until every shard can hold at least one entry (and byte).
unsigned choose_shards(const LocmemOptions& o) {
  std::size_t n = 0;
  if (o.shards == 0) {
    n = std::clamp<std::size_t>(o.max_entries / 64, 1, kMaxAutoShards);
    if (o.max_bytes != 0) {
      n = std::min(n, std::max<std::size_t>(1, o.max_bytes / kMinBytesPerAutoShard));
    }
  } else {
    n = std::min<std::size_t>(o.shards, kMaxShards);
  }
  n = std::min(std::bit_ceil(n), std::bit_floor(o.max_entries));
  if (o.max_bytes != 0) n = std::min(n, std::bit_floor(o.max_bytes));
  return static_cast<unsigned>(std::max<std::size_t>(n, 1));
}

// Shard i's share of a bound: the remainder goes one unit each to the first shards, so the
// shares add up to exactly the bound and no share exceeds ceil(bound / shards).
std::size_t share_of(std::size_t bound, std::size_t shards, std::size_t i) {
  return bound / shards + (i < bound % shards ? 1 : 0);
}

}  // namespace

LocmemBackend::LocmemBackend(const LocmemOptions& o)
    : options_(o),
      clock_(o.clock != nullptr ? o.clock : &SystemClock::instance()),
      shard_count_(choose_shards(o)),
      shards_(std::make_unique<Shard[]>(shard_count_)) {
  info_.name = "locmem";
  info_.outlives_process = false;
  info_.supports_keys = true;
  info_.supports_stats = true;
  for (unsigned i = 0; i < shard_count_; ++i) {
    Shard& s = shards_[i];
    s.max_entries = share_of(o.max_entries, shard_count_, i);
    s.max_bytes = o.max_bytes == 0 ? 0 : share_of(o.max_bytes, shard_count_, i);
    s.reset_table(kInitialBuckets);
  }
}

LocmemBackend::~LocmemBackend() {
  for (unsigned i = 0; i < shard_count_; ++i) {
    Graveyard dead;
    shards_[i].clear(dead);
  }
}

Result<std::optional<Bytes>> LocmemBackend::get(std::string_view key) {
  const Target t = target(key);
  Graveyard dead;
  std::lock_guard lock(t.shard.mutex);
  Item** slot = find_live(t, key, dead);
  if (slot == nullptr) return std::optional<Bytes>();
  Item* e = *slot;
  t.shard.record_hit(e);
  return std::optional<Bytes>(Bytes::share(&e->block, e->value(), e->value_len));
}

Status LocmemBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  if (Status st = check_sizes(key, value); !st.ok()) return st;
  const Target t = target(key);
  Shard& s = t.shard;
  const bool too_big = too_big_for(s, key, value);
  if (too_big || expiry.expired(time_of(t.now))) {
    // An expired write removes the old value; so does a refused one (no stale reads).
    (void)erase(key);
    return too_big ? too_big_error(s, key, value) : Status();
  }
  Item* e = make_item(key, value, to_ms(expiry), value.size());
  if (e == nullptr) return out_of_memory();
  bool dump_others = false;
  {
    Graveyard dead;
    std::lock_guard lock(s.mutex);
    Item** slot = s.find_slot(t.hash, key);
    if (*slot != nullptr) s.unlink(slot, dead);
    make_room(s, e->charge(), dead, dump_others);
    s.insert(e, t.hash);
  }
  if (dump_others) clear_except(&s);
  return {};
}

Result<bool> LocmemBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  if (Status st = check_sizes(key, value); !st.ok()) return st;
  const Target t = target(key);
  Shard& s = t.shard;
  if (expiry.expired(time_of(t.now))) {
    // Nothing retrievable is stored, yet add "succeeds" when the key was free (Django).
    Graveyard dead;
    std::lock_guard lock(s.mutex);
    return find_live(t, key, dead) == nullptr;
  }
  if (too_big_for(s, key, value)) return too_big_error(s, key, value);
  Item* e = make_item(key, value, to_ms(expiry), value.size());
  if (e == nullptr) return out_of_memory();
  bool dump_others = false;
  {
    Graveyard dead;
    std::lock_guard lock(s.mutex);
    if (find_live(t, key, dead) != nullptr) {
      dead.bury(e);  // never linked: released with the graveyard, after the lock
      return false;
    }
    make_room(s, e->charge(), dead, dump_others);
    s.insert(e, t.hash);
  }
  if (dump_others) clear_except(&s);
  return true;
}

Result<bool> LocmemBackend::touch(std::string_view key, Expiry expiry) {
  const Target t = target(key);
  Graveyard dead;
  std::lock_guard lock(t.shard.mutex);
  Item** slot = find_live(t, key, dead);
  if (slot == nullptr) return false;
  // Not a use: the LRU position stays (Django's touch). A past expiry removes the key.
  (*slot)->expiry_ms = to_ms(expiry);
  if ((*slot)->expired(t.now)) t.shard.unlink(slot, dead);
  return true;
}

Result<bool> LocmemBackend::erase(std::string_view key) {
  const Target t = target(key);
  Graveyard dead;
  std::lock_guard lock(t.shard.mutex);
  Item** slot = t.shard.find_slot(t.hash, key);
  if (*slot == nullptr) return false;
  const bool live = !(*slot)->expired(t.now);
  t.shard.unlink(slot, dead);
  return live;
}

Result<bool> LocmemBackend::contains(std::string_view key) {
  const Target t = target(key);
  Graveyard dead;
  std::lock_guard lock(t.shard.mutex);
  return find_live(t, key, dead) != nullptr;  // not a use
}

// Entries are immutable once published (readers may hold Bytes into them), so incr builds
// a new entry: it is allocated before the lock with room for any int64, and only its digits
// and expiry are filled in under the lock, which makes the read-modify-write atomic.
Result<std::int64_t> LocmemBackend::incr(std::string_view key, std::int64_t delta) {
  if (key.size() > kMaxKeyBytes) return key_too_long(key);
  const Target t = target(key);
  Item* fresh = make_item(key, {}, kNeverMs, kIncrValueCapacity);
  if (fresh == nullptr) return out_of_memory();
  Graveyard dead;
  bool dump_others = false;
  Result<std::int64_t> result = incr_locked(t, fresh, delta, dead, dump_others);
  if (!result.ok()) dead.bury(fresh);
  if (dump_others) clear_except(&t.shard);
  return result;
}

Status LocmemBackend::clear() {
  clear_except(nullptr);
  return {};
}

Result<Ttl> LocmemBackend::ttl(std::string_view key) {
  const Target t = target(key);
  Graveyard dead;
  std::lock_guard lock(t.shard.mutex);
  Item** slot = find_live(t, key, dead);
  if (slot == nullptr) return Ttl::missing();
  return Ttl::of(from_ms((*slot)->expiry_ms), time_of(t.now));
}

Result<std::vector<std::string>> LocmemBackend::keys(std::string_view pattern) {
  const std::uint64_t now = now_ms(*clock_);
  std::vector<std::string> out;
  for (unsigned i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    for (Item* e = shards_[i].mru; e != nullptr; e = e->next) {
      if (!e->expired(now) && glob_match(pattern, e->key())) out.emplace_back(e->key());
    }
  }
  return out;
}

Result<StatPairs> LocmemBackend::stats() {
  std::size_t entries = 0, bytes = 0;
  std::uint64_t evictions = 0;
  for (unsigned i = 0; i < shard_count_; ++i) {
    std::lock_guard lock(shards_[i].mutex);
    entries += shards_[i].entries;
    bytes += shards_[i].bytes;
    evictions += shards_[i].evictions;
  }
  return StatPairs{{"entries", std::to_string(entries)},
                   {"bytes", std::to_string(bytes)},
                   {"max_entries", std::to_string(options_.max_entries)},
                   {"max_bytes", std::to_string(options_.max_bytes)},
                   {"shards", std::to_string(shard_count_)},
                   {"evictions", std::to_string(evictions)}};
}

LocmemBackend::Target LocmemBackend::target(std::string_view key) const noexcept {
  const std::uint64_t h = key_hash(key);
  Shard& s = shards_[(h >> 32) & (shard_count_ - 1)];
  s.prefetch(h);
  return {h, s, now_ms(*clock_)};
}

// The slot of the live entry for `key`, or nullptr; an expired entry found on the way is
// removed (lazy expiry). The shard's lock must be held.
Item** LocmemBackend::find_live(const Target& t, std::string_view key, Graveyard& dead) noexcept {
  Item** slot = t.shard.find_slot(t.hash, key);
  if (*slot == nullptr) return nullptr;
  if (!(*slot)->expired(t.now)) return slot;
  t.shard.unlink(slot, dead);
  return nullptr;
}

Status LocmemBackend::check_sizes(std::string_view key, std::string_view value) {
  if (key.size() > kMaxKeyBytes) return key_too_long(key);
  if (value.size() > kMaxValueBytes) {
    return Status(StatusCode::kResourceExhausted,
                  "locmem values are limited to 4 GiB; this one has " +
                      std::to_string(value.size()) + " bytes");
  }
  return {};
}

Status LocmemBackend::key_too_long(std::string_view key) {
  return invalid_argument_error("locmem keys are limited to 65535 bytes; this one has " +
                                std::to_string(key.size()));
}

bool LocmemBackend::too_big_for(const Shard& s, std::string_view key, std::string_view value) {
  return s.max_bytes != 0 && key.size() + value.size() > s.max_bytes;
}

Status LocmemBackend::too_big_error(const Shard& s, std::string_view key, std::string_view value) {
  return Status(StatusCode::kResourceExhausted,
                "a locmem entry of " + std::to_string(key.size() + value.size()) +
                    " bytes exceeds its shard's share of max_bytes (" +
                    std::to_string(s.max_bytes) + ")");
}

Status LocmemBackend::out_of_memory() {
  return Status(StatusCode::kResourceExhausted, "locmem: out of memory");
}

Result<std::int64_t> LocmemBackend::incr_locked(const Target& t, Item* fresh, std::int64_t delta,
                                                Graveyard& dead, bool& dump_others) {
  Shard& s = t.shard;
  std::lock_guard lock(s.mutex);
  Item** slot = find_live(t, fresh->key(), dead);
  if (slot == nullptr) return not_found_error("key not found");
  Item* old = *slot;
  std::optional<std::int64_t> value = parse_decimal({old->value(), old->value_len});
  if (!value) {
    return Status(StatusCode::kFailedPrecondition, "the stored value is not a decimal integer");
  }
  Result<std::int64_t> sum = checked_add(*value, delta);
  if (!sum.ok()) return sum;
  char* digits = fresh->data() + fresh->key_len;
  auto [end, ec] = std::to_chars(digits, digits + kIncrValueCapacity, *sum);
  fresh->value_len = static_cast<std::uint32_t>(end - digits);
  fresh->expiry_ms = old->expiry_ms;  // incr keeps the entry's expiry
  s.unlink(slot, dead);
  if (!too_big_for(s, fresh->key(), {digits, fresh->value_len})) {
    make_room(s, fresh->charge(), dead, dump_others);
    s.insert(fresh, t.hash);
  } else {
    dead.bury(fresh);  // cannot happen for a sane max_bytes; the key is then simply gone
  }
  return sum;
}

// Eviction, run by every write that links a new entry while holding the shard's lock.
// Django's LocMemCache culls when a write finds the cache full: cull_frequency N evicts
// size/N least-recently-used entries at once (then, unlike Django, whose integer division
// evicts nothing below N entries, more if the bounds still need it), 0 dumps the whole
// cache. Batch culling amortises the work of a full cache; unset (our default) evicts exactly as
// many LRU entries as the bounds need, which keeps the hit ratio of true LRU. Eviction is per
// shard: a shard's share of max_entries/max_bytes is its own bound, so the whole cache
// never exceeds its bounds and never takes a second lock on the write path. For
// cull_frequency 0 this shard is emptied here and the caller empties the others after
// releasing this lock (one lock at a time, so no lock-order deadlock).
void LocmemBackend::make_room(Shard& s, std::size_t charge, Graveyard& dead, bool& dump_others) {
  if (!s.full_for(charge)) return;
  if (options_.cull_frequency.has_value()) {
    if (*options_.cull_frequency == 0) {
      s.clear(dead);
      dump_others = shard_count_ > 1;
      return;
    }
    for (std::size_t n = s.entries / *options_.cull_frequency; n > 0; --n) s.evict_lru(dead);
  }
  while (s.lru != nullptr && s.full_for(charge)) s.evict_lru(dead);
}

void LocmemBackend::clear_except(const Shard* skip) {
  for (unsigned i = 0; i < shard_count_; ++i) {
    if (&shards_[i] == skip) continue;
    Graveyard dead;  // destroyed after the lock below
    std::lock_guard lock(shards_[i].mutex);
    shards_[i].clear(dead);
  }
}

}  // namespace cachekit::locmem_internal

namespace cachekit {

std::shared_ptr<Backend> make_locmem_backend(const LocmemOptions& options) {
  if (options.max_entries == 0) {
    throw std::invalid_argument("locmem: max_entries must be at least 1");
  }
  return std::make_shared<locmem_internal::LocmemBackend>(options);
}

}  // namespace cachekit
