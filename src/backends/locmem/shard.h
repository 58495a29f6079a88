#pragma once
// The data structure behind the locmem backend (locmem.cc): entries and shards. Private to
// the backend; nothing here takes a lock by itself — every Shard member is called with the
// shard's mutex held, except prefetch().

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

#define XXH_INLINE_ALL  // the key hash is on every call: let it inline
#include <xxhash.h>

#include "cachekit/bytes.h"

namespace cachekit::locmem_internal {

inline constexpr std::uint64_t kNeverMs = (std::uint64_t{1} << 48) - 1;  // 48-bit ms: ~year 10889

// One entry in ONE allocation: this header, then the key bytes, then the value bytes. The
// header starts with the SharedBlock, so get() hands out Bytes that point straight into the
// entry (zero copy); the cache owns one reference while the entry is linked, and the last
// holder frees the whole block with ::operator delete. Every other field is trivially
// destructible, which that release path requires.
//
// 40 bytes: the refcount, the value length, three links, and the expiry (epoch ms in 48
// bits) sharing a word with the key length. There is no stored hash: a chain holds about
// one entry, whose line the lookup loads anyway, so comparing lengths then bytes costs no
// extra miss, and growing the table rehashes keys it is already touching. With glibc's
// 8-byte chunk header and 16-byte rounding plus ~8 bytes of bucket array, the whole
// overhead stays near 64 bytes an entry (measured in bench/locmem_bench.cc).
struct Item {
  detail::SharedBlock block;
  std::uint32_t value_len;
  Item* next_hash;               // the bucket chain
  Item* prev;                    // towards the most recently used entry (nullptr at the MRU end)
  Item* next;                    // towards the least recently used entry (nullptr at the LRU end)
  std::uint64_t expiry_ms : 48;  // kNeverMs for no expiry
  std::uint64_t key_len : 16;

  char* data() noexcept { return reinterpret_cast<char*>(this) + sizeof(Item); }
  [[nodiscard]] const char* data() const noexcept {
    return reinterpret_cast<const char*>(this) + sizeof(Item);
  }
  [[nodiscard]] std::string_view key() const noexcept {
    return {data(), static_cast<std::size_t>(key_len)};
  }
  [[nodiscard]] const char* value() const noexcept { return data() + key_len; }
  [[nodiscard]] std::size_t charge() const noexcept { return std::size_t{key_len} + value_len; }
  [[nodiscard]] bool expired(std::uint64_t now_ms) const noexcept { return expiry_ms <= now_ms; }
};
static_assert(sizeof(Item) == 40, "keep the per-entry header at 40 bytes");
static_assert(offsetof(Item, block) == 0, "Bytes release the block as the allocation start");
static_assert(std::is_trivially_destructible_v<Item>);

// Builds an unlinked entry holding one reference (the cache's), or nullptr when out of memory.
// `value_capacity` may exceed value.size() to leave room for incr's digits.
inline Item* make_item(std::string_view key, std::string_view value, std::uint64_t expiry_ms,
                       std::size_t value_capacity) {
  void* raw = ::operator new(sizeof(Item) + key.size() + value_capacity, std::nothrow);
  if (raw == nullptr) return nullptr;
  auto* e = new (raw) Item;
  e->value_len = static_cast<std::uint32_t>(value.size());
  e->next_hash = e->prev = e->next = nullptr;
  e->expiry_ms = expiry_ms;
  e->key_len = static_cast<std::uint16_t>(key.size());
  if (!key.empty()) std::memcpy(e->data(), key.data(), key.size());
  if (!value.empty()) std::memcpy(e->data() + key.size(), value.data(), value.size());
  return e;
}

inline void release(Item* e) noexcept { detail::release(&e->block); }

// Entries unlinked under a shard lock, released after it is dropped so that neither the
// final ::operator delete nor a reader's cache-line traffic lengthens the critical section.
class Graveyard {
 public:
  Graveyard() = default;
  Graveyard(const Graveyard&) = delete;
  Graveyard& operator=(const Graveyard&) = delete;
  ~Graveyard() {
    while (head_ != nullptr) release(std::exchange(head_, head_->next));
  }
  void bury(Item* e) noexcept {
    e->next = head_;
    head_ = e;
  }

 private:
  Item* head_ = nullptr;
};

// Key equality without a library call for the common short key: two overlapping 8-byte
// loads cover 8..16 bytes (memcmp was ~3 % of a cache hit in profiles).
inline bool same_key(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  const std::size_t n = a.size();
  if (n < 8 || n > 16) return a == b;
  std::uint64_t a0, a1, b0, b1;
  std::memcpy(&a0, a.data(), 8);
  std::memcpy(&b0, b.data(), 8);
  std::memcpy(&a1, a.data() + n - 8, 8);
  std::memcpy(&b1, b.data() + n - 8, 8);
  return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

inline std::uint64_t key_hash(std::string_view key) noexcept {
  return XXH3_64bits(key.data(), key.size());
}

// The shard lock. Critical sections are a few hundred ns, so a waiter should spin briefly
// rather than sleep in the kernel at once (std::mutex's glibc default, which costs two
// system calls of ~1 us each on this project's VMs): glibc's adaptive mutex does exactly
// that. Elsewhere, std::mutex.
#ifdef PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP
class ShardMutex {
 public:
  ShardMutex() = default;
  ShardMutex(const ShardMutex&) = delete;
  ShardMutex& operator=(const ShardMutex&) = delete;
  ~ShardMutex() { pthread_mutex_destroy(&mutex_); }
  void lock() noexcept { pthread_mutex_lock(&mutex_); }
  void unlock() noexcept { pthread_mutex_unlock(&mutex_); }

 private:
  pthread_mutex_t mutex_ = PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP;
};
#else
using ShardMutex = std::mutex;
#endif

// One shard: a chained hash table of entry pointers plus an intrusive LRU list, both guarded
// by `mutex` (LevelDB's LRUCache + HandleTable, util/cache.cc).
//
// Layout. The bucket array and mask change only when the table grows, so they sit on a
// cache line of their own that every core can keep: get() reads them before taking the lock
// to prefetch its bucket, and with the mutex on the same line that read pulled the line
// from the other core on every call (a fifth of a hit's time with two threads). They are
// atomics only for that unlocked read (a stale address just wastes the prefetch); under the
// lock they are plain loads. The mutex, the MRU end and the pending count, all written on
// every hit, share the next line, so a hit moves one line between cores, not three.
//
// Deferred promotion. Moving a hit to the MRU end writes the entry's two list neighbours,
// which are cold: two cache misses that the lock's release must wait for, a quarter of a
// hit's time in profiles. So a hit only appends the entry to `pending`, and the moves are
// replayed, in order, when the buffer fills or before anything else changes the list
// (insert, unlink, eviction, clear). The list is therefore exactly the LRU order whenever
// it is used, a one-shard cache stays exactly LRU, and since every unlink replays first,
// every pending entry is still linked. A batch of moves overlaps its misses instead of
// paying them one hit at a time.
inline constexpr std::uint32_t kPendingHits = 16;

struct alignas(64) Shard {
  // Read-mostly.
  std::atomic<Item**> buckets{nullptr};
  std::atomic<std::uint32_t> mask{0};  // bucket count - 1
  std::size_t max_entries = 0;         // fixed at construction
  std::size_t max_bytes = 0;           // 0: no byte bound
  // Written on every call.
  alignas(64) ShardMutex mutex;
  Item* mru = nullptr;
  std::uint32_t pending_count = 0;
  Item* pending[kPendingHits];  // hits whose promotion to MRU is deferred, oldest first
  // Written by writers only.
  Item* lru = nullptr;
  std::size_t entries = 0;
  std::size_t bytes = 0;
  std::uint64_t evictions = 0;

  Shard() = default;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard() { delete[] buckets.load(std::memory_order_relaxed); }

  [[nodiscard]] Item** bucket(std::uint64_t hash) const noexcept {
    return buckets.load(std::memory_order_relaxed) +
           (static_cast<std::uint32_t>(hash) & mask.load(std::memory_order_relaxed));
  }
  void prefetch(std::uint64_t hash) const noexcept { __builtin_prefetch(bucket(hash)); }

  // The slot that points at the entry for `key`, or at the nullptr ending its chain.
  [[nodiscard]] Item** find_slot(std::uint64_t hash, std::string_view key) const noexcept {
    Item** slot = bucket(hash);
    while (*slot != nullptr && !same_key((*slot)->key(), key)) slot = &(*slot)->next_hash;
    return slot;
  }
  Item** slot_of(Item* e) const noexcept {
    Item** slot = bucket(key_hash(e->key()));
    while (*slot != e) slot = &(*slot)->next_hash;
    return slot;
  }

  void lru_unlink(Item* e) noexcept {
    (e->prev != nullptr ? e->prev->next : mru) = e->next;
    (e->next != nullptr ? e->next->prev : lru) = e->prev;
  }
  void lru_push_front(Item* e) noexcept {
    e->prev = nullptr;
    e->next = mru;
    (mru != nullptr ? mru->prev : lru) = e;
    mru = e;
  }
  // A hit on the most recently used entry records nothing: hot keys then cost no
  // cache-line writes here.
  void record_hit(Item* e) noexcept {
    if (e == (pending_count == 0 ? mru : pending[pending_count - 1])) return;
    pending[pending_count++] = e;
    if (pending_count == kPendingHits) replay_hits();
  }
  void replay_hits() noexcept {
    for (std::uint32_t i = 0; i < pending_count; ++i) {
      Item* e = pending[i];
      if (e == mru) continue;
      lru_unlink(e);
      lru_push_front(e);
    }
    pending_count = 0;
  }

  // Removes the entry `*slot` from the table and the list and hands it to `dead`.
  void unlink(Item** slot, Graveyard& dead) noexcept {
    replay_hits();
    Item* e = *slot;
    *slot = e->next_hash;
    lru_unlink(e);
    --entries;
    bytes -= e->charge();
    dead.bury(e);
  }

  void evict_lru(Graveyard& dead) noexcept {
    replay_hits();  // the LRU end must be the real one
    unlink(slot_of(lru), dead);
    ++evictions;
  }

  // Links an entry whose key is absent at the MRU end.
  void insert(Item* e, std::uint64_t hash) noexcept {
    replay_hits();
    Item** head = bucket(hash);
    e->next_hash = *head;
    *head = e;
    lru_push_front(e);
    ++entries;
    if (entries > std::size_t{mask.load(std::memory_order_relaxed)} + 1) grow();
    bytes += e->charge();
  }

  // Throws std::bad_alloc (out of the backend's constructor, its only caller) and then keeps
  // the old table.
  void reset_table(std::uint32_t length) {
    Item** fresh = new Item*[length]();
    delete[] buckets.exchange(fresh, std::memory_order_relaxed);
    mask.store(length - 1, std::memory_order_relaxed);
  }

  // Doubles the bucket array (LevelDB's policy: keep the load factor at or below one). If the
  // allocation fails the chains just grow longer; nothing is lost.
  void grow() noexcept {
    const std::uint32_t old_length = mask.load(std::memory_order_relaxed) + 1;
    const std::uint32_t length = old_length * 2;
    Item** fresh = new (std::nothrow) Item*[length]();
    if (fresh == nullptr) return;
    Item** old = buckets.load(std::memory_order_relaxed);
    for (std::uint32_t i = 0; i < old_length; ++i) {
      for (Item* e = old[i]; e != nullptr;) {
        Item* next = e->next_hash;
        Item** head = &fresh[static_cast<std::uint32_t>(key_hash(e->key())) & (length - 1)];
        e->next_hash = *head;
        *head = e;
        e = next;
      }
    }
    buckets.store(fresh, std::memory_order_relaxed);
    mask.store(length - 1, std::memory_order_relaxed);
    delete[] old;
  }

  // Unlinks every entry into `dead`; the bucket array keeps its size.
  void clear(Graveyard& dead) noexcept {
    pending_count = 0;
    for (Item* e = mru; e != nullptr;) dead.bury(std::exchange(e, e->next));
    std::fill_n(buckets.load(std::memory_order_relaxed),
                std::size_t{mask.load(std::memory_order_relaxed)} + 1, nullptr);
    mru = lru = nullptr;
    entries = bytes = 0;
  }

  [[nodiscard]] bool full_for(std::size_t charge) const noexcept {
    return entries >= max_entries || (max_bytes != 0 && bytes + charge > max_bytes);
  }
};

}  // namespace cachekit::locmem_internal
