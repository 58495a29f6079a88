// locmem specifics: LRU order and culling (Django's LocMemCache tests), the bounds, lazy
// expiry under a ManualClock, zero-copy value lifetime, isolation, and concurrency. The
// general Backend contract is covered by the conformance suite.

#include "cachekit/backends/locmem.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backends/locmem/shard.h"
#include "cachekit/cache.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::optional<std::string> get(Backend& b, std::string_view key) {
  auto r = b.get(key);
  EXPECT_OK(r);
  if (!r.ok() || !r->has_value()) return std::nullopt;
  return (*r)->str();
}

void set(Backend& b, std::string_view key, std::string_view value, Expiry e = Expiry::never()) {
  Status s = b.set(key, value, e);
  ASSERT_OK(s);
}

std::string stat(Backend& b, std::string_view name) {
  auto pairs = b.stats();
  EXPECT_OK(pairs);
  for (const auto& [k, v] : *pairs) {
    if (k == name) return v;
  }
  ADD_FAILURE() << "no statistic " << name;
  return {};
}
// Concatenation by append: g++ 12 -O3 warns falsely (-Wrestrict, GCC PR 105329) on
// `"literal" + std::string`.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

std::size_t entries(Backend& b) { return std::stoul(stat(b, "entries")); }

std::shared_ptr<Backend> lru_backend(std::size_t max_entries, std::optional<unsigned> cull) {
  LocmemOptions o;
  o.max_entries = max_entries;
  o.shards = 1;
  o.cull_frequency = cull;
  return make_locmem_backend(o);
}

// Django's test_lru_get / test_lru_set / test_lru_incr: MAX_ENTRIES 9, CULL_FREQUENCY 3.
// After 0..8 are stored and 0..5 used, storing 9 culls 9/3 = 3 entries: 6, 7 and 8.
void expect_django_cull_after(const std::function<void(Backend&, int)>& use, int expected_base) {
  auto b = lru_backend(9, 3);
  for (int k = 0; k < 9; ++k) set(*b, std::to_string(k), std::to_string(k));
  for (int k = 0; k < 6; ++k) use(*b, k);
  set(*b, "9", "9");
  for (int k = 0; k < 6; ++k) {
    EXPECT_EQ(get(*b, std::to_string(k)), std::to_string(k + expected_base)) << k;
  }
  for (int k = 6; k < 9; ++k) EXPECT_EQ(get(*b, std::to_string(k)), std::nullopt) << k;
  EXPECT_EQ(get(*b, "9"), "9");
  EXPECT_EQ(stat(*b, "evictions"), "3");
}

TEST(Locmem, GetCountsAsAUseForCulling) {
  expect_django_cull_after([](Backend& b, int k) { EXPECT_TRUE(get(b, std::to_string(k))); }, 0);
}

TEST(Locmem, SetCountsAsAUseForCulling) {
  expect_django_cull_after([](Backend& b, int k) { set(b, std::to_string(k), std::to_string(k)); },
                           0);
}

TEST(Locmem, IncrCountsAsAUseForCulling) {
  expect_django_cull_after(
      [](Backend& b, int k) { EXPECT_EQ(*b.incr(std::to_string(k), 1), k + 1); }, 1);
}

TEST(Locmem, EvictsLeastRecentlyUsedWhenFull) {
  auto b = lru_backend(3, std::nullopt);
  set(*b, "a", "1");
  set(*b, "b", "2");
  set(*b, "c", "3");
  EXPECT_TRUE(get(*b, "a"));  // order, most recent first: a c b
  set(*b, "d", "4");          // evicts exactly one: b
  EXPECT_EQ(get(*b, "b"), std::nullopt);
  EXPECT_EQ(entries(*b), 3u);
  EXPECT_TRUE(*b->add("e", "5", Expiry::never()));  // evicts c (a was used after c)
  EXPECT_EQ(get(*b, "c"), std::nullopt);
  EXPECT_EQ(get(*b, "a"), "1");
  EXPECT_EQ(get(*b, "d"), "4");
  EXPECT_EQ(get(*b, "e"), "5");
  EXPECT_EQ(stat(*b, "evictions"), "2");
}

// A one-shard cache must behave exactly like a textbook LRU list under any sequence of
// gets, sets, adds, incrs, erases, contains and touches.
TEST(Locmem, OneShardMatchesAReferenceLruModel) {
  constexpr std::size_t kCapacity = 16;
  auto b = lru_backend(kCapacity, std::nullopt);
  std::list<std::pair<std::string, std::string>> model;  // most recent first
  auto find = [&](const std::string& k) {
    return std::find_if(model.begin(), model.end(), [&](const auto& p) { return p.first == k; });
  };
  auto use = [&](const std::string& k, std::string v) {
    if (auto it = find(k); it != model.end()) model.erase(it);
    model.emplace_front(k, std::move(v));
    if (model.size() > kCapacity) model.pop_back();
  };
  std::uint32_t x = 12345;
  for (int i = 0; i < 20'000; ++i) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    const std::string key = cat("k", std::to_string(x % 40));
    auto it = find(key);
    switch ((x >> 10) % 7) {
      case 0:
      case 1: {
        auto got = get(*b, key);
        ASSERT_EQ(got.has_value(), it != model.end()) << i << " " << key;
        if (got) {
          ASSERT_EQ(*got, it->second);
          use(key, *got);
        }
        break;
      }
      case 2:
        set(*b, key, std::to_string(i));
        use(key, std::to_string(i));
        break;
      case 3:
        ASSERT_EQ(*b->add(key, "1", Expiry::never()), it == model.end());
        if (it == model.end()) use(key, "1");
        break;
      case 4: {
        auto r = b->incr(key, 1);
        ASSERT_EQ(r.ok(), it != model.end() && parse_decimal(it->second).has_value()) << i;
        if (r.ok()) use(key, std::to_string(*r));
        break;
      }
      case 5:
        ASSERT_EQ(*b->erase(key), it != model.end());
        if (it != model.end()) model.erase(it);
        break;
      default:
        ASSERT_EQ(*b->contains(key), it != model.end());
        ASSERT_EQ(*b->touch(key, Expiry::never()), it != model.end());
    }
  }
  EXPECT_EQ(entries(*b), model.size());
}

TEST(Locmem, OverwritingAKeyInAFullCacheEvictsNothing) {
  auto b = lru_backend(2, std::nullopt);
  set(*b, "a", "1");
  set(*b, "b", "2");
  set(*b, "a", "3");
  EXPECT_EQ(get(*b, "a"), "3");
  EXPECT_EQ(get(*b, "b"), "2");
  EXPECT_EQ(stat(*b, "evictions"), "0");
}

TEST(Locmem, ContainsTouchAndTtlAreNotUses) {
  auto b = lru_backend(2, std::nullopt);
  set(*b, "old", "1");
  set(*b, "new", "2");
  EXPECT_TRUE(*b->contains("old"));
  EXPECT_TRUE(*b->touch("old", Expiry::never()));
  EXPECT_TRUE(b->ttl("old")->is_never());
  EXPECT_FALSE(*b->add("old", "x", Expiry::never()));  // a refused add is no use either
  set(*b, "third", "3");
  EXPECT_EQ(get(*b, "old"), std::nullopt);
  EXPECT_EQ(get(*b, "new"), "2");
}

TEST(Locmem, CullFrequencyZeroEmptiesTheCacheWhenFull) {
  auto b = lru_backend(3, 0u);
  for (std::string k : {"a", "b", "c"}) set(*b, k, k);
  set(*b, "d", "d");
  EXPECT_EQ(entries(*b), 1u);
  EXPECT_EQ(get(*b, "d"), "d");
  EXPECT_EQ(get(*b, "a"), std::nullopt);
}

TEST(Locmem, CullFrequencyZeroEmptiesEveryShard) {
  LocmemOptions o;
  o.max_entries = 64;
  o.shards = 4;
  o.cull_frequency = 0;
  auto b = make_locmem_backend(o);
  // Fill until some shard overflows: the cache then holds only the newest entry.
  std::size_t before = 0;
  int k = 0;
  for (; k < 1000; ++k) {
    before = entries(*b);
    set(*b, cat("k", std::to_string(k)), "v");
    if (entries(*b) <= before) break;
  }
  ASSERT_LT(k, 1000);
  EXPECT_GT(before, 16u);  // more than one shard held entries
  EXPECT_EQ(entries(*b), 1u);
  EXPECT_EQ(get(*b, cat("k", std::to_string(k))), "v");
}

TEST(Locmem, CullFrequencyEvictsAtLeastOneEntry) {
  auto b = lru_backend(2, 5u);  // Django's 2 // 5 == 0 would overflow the bound
  set(*b, "a", "1");
  set(*b, "b", "2");
  set(*b, "c", "3");
  EXPECT_EQ(entries(*b), 2u);
  EXPECT_EQ(get(*b, "a"), std::nullopt);
}

TEST(Locmem, EvictsLeastRecentlyUsedToStayWithinMaxBytes) {
  LocmemOptions o;
  o.max_entries = 1000;
  o.max_bytes = 100;  // key + value bytes
  auto b = make_locmem_backend(o);
  EXPECT_EQ(stat(*b, "shards"), "1");
  const std::string value(28, 'x');  // 2-byte keys: 30 bytes an entry
  for (std::string k : {"k1", "k2", "k3"}) set(*b, k, value);
  EXPECT_EQ(stat(*b, "bytes"), "90");
  EXPECT_TRUE(get(*b, "k1"));
  set(*b, "k4", value);  // 120 > 100: evicts k2, the least recently used
  EXPECT_EQ(stat(*b, "bytes"), "90");
  EXPECT_EQ(get(*b, "k2"), std::nullopt);
  set(*b, "k5", std::string(98, 'y'));  // needs everything else gone
  EXPECT_EQ(entries(*b), 1u);
  EXPECT_EQ(stat(*b, "bytes"), "100");
}

TEST(Locmem, RefusesAnEntryLargerThanItsShareOfMaxBytes) {
  LocmemOptions o;
  o.max_bytes = 10;
  auto b = make_locmem_backend(o);
  set(*b, "k", "small");
  Status s = b->set("k", "far too large", Expiry::never());
  EXPECT_STATUS(s, StatusCode::kResourceExhausted);
  EXPECT_EQ(get(*b, "k"), std::nullopt);  // the old value is not served stale
  EXPECT_STATUS(b->add("j", "far too large", Expiry::never()), StatusCode::kResourceExhausted);
}

void expect_total_bound(std::size_t max_entries, unsigned shards) {
  LocmemOptions o;
  o.max_entries = max_entries;
  o.shards = shards;
  auto b = make_locmem_backend(o);
  for (int k = 0; k < 5000; ++k) {
    set(*b, cat("key", std::to_string(k)), "v");
    ASSERT_LE(entries(*b), max_entries) << "after " << k;
  }
  std::size_t present = 0;
  for (int k = 0; k < 5000; ++k) present += get(*b, cat("key", std::to_string(k))) ? 1 : 0;
  EXPECT_LE(present, max_entries);
  EXPECT_GT(present, max_entries * 3 / 4);  // the shards are reasonably balanced
}

TEST(Locmem, MultiShardCacheNeverExceedsMaxEntries) {
  expect_total_bound(256, 8);
  expect_total_bound(1001, 8);  // not a multiple of the shard count
  expect_total_bound(300, 0);   // automatic: 4 shards
}

TEST(Locmem, ChoosesAPowerOfTwoShardCount) {
  auto shards = [](std::size_t max_entries, unsigned shards, std::size_t max_bytes = 0) {
    LocmemOptions o;
    o.max_entries = max_entries;
    o.shards = shards;
    o.max_bytes = max_bytes;
    return stat(*make_locmem_backend(o), "shards");
  };
  EXPECT_EQ(shards(300, 0), "4");  // Django's default MAX_ENTRIES
  EXPECT_EQ(shards(100, 0), "1");  // small caches are exactly LRU
  EXPECT_EQ(shards(1'000'000, 0), "64");
  EXPECT_EQ(shards(1'000'000, 0, 8u << 20), "8");  // at least 1 MiB of max_bytes a shard
  EXPECT_EQ(shards(1000, 3), "4");
  EXPECT_EQ(shards(4, 16), "4");  // every shard holds at least one entry
  EXPECT_EQ(shards(1'000'000, 5000), "1024");
}

TEST(Locmem, ZeroMaxEntriesIsAConfigurationError) {
  LocmemOptions o;
  o.max_entries = 0;
  EXPECT_THROW(make_locmem_backend(o), std::invalid_argument);
}

class LocmemExpiry : public ::testing::Test {
 protected:
  Expiry in(milliseconds d) const { return Expiry::at(clock_.now() + d); }
  static LocmemOptions with_clock(const Clock* clock) {
    LocmemOptions o;
    o.clock = clock;
    return o;
  }
  ManualClock clock_;
  std::shared_ptr<Backend> b_ = make_locmem_backend(with_clock(&clock_));
};

TEST_F(LocmemExpiry, EntryExpiresExactlyAtItsExpiry) {
  set(*b_, "k", "v", in(seconds(10)));
  clock_.advance(milliseconds(9999));
  EXPECT_EQ(get(*b_, "k"), "v");
  EXPECT_EQ(b_->ttl("k")->remaining(), milliseconds(1));
  clock_.advance(milliseconds(1));  // expiry <= now: expired
  EXPECT_EQ(get(*b_, "k"), std::nullopt);
  EXPECT_TRUE(b_->ttl("k")->is_missing());
}

TEST_F(LocmemExpiry, ExpiredEntriesAreRemovedWhenTouched) {
  set(*b_, "a", "1", in(seconds(1)));
  set(*b_, "b", "2", in(seconds(1)));
  set(*b_, "c", "3", in(seconds(1)));
  set(*b_, "d", "4", in(seconds(1)));
  clock_.advance(seconds(1));
  EXPECT_EQ(entries(*b_), 4u);  // lazily: nothing has looked yet
  EXPECT_FALSE(*b_->contains("a"));
  EXPECT_FALSE(*b_->erase("b"));  // an expired key is not "live" for erase
  EXPECT_STATUS(b_->incr("c", 1), StatusCode::kNotFound);
  EXPECT_FALSE(*b_->touch("d", Expiry::never()));
  EXPECT_EQ(entries(*b_), 0u);
}

TEST_F(LocmemExpiry, KeysSkipsExpiredEntries) {
  set(*b_, "user:1", "a");
  set(*b_, "user:2", "b", in(seconds(1)));
  set(*b_, "page:1", "c");
  clock_.advance(seconds(2));
  auto keys = b_->keys("user:*");
  ASSERT_OK(keys);
  EXPECT_EQ(*keys, std::vector<std::string>{"user:1"});
}

TEST_F(LocmemExpiry, SetWithAPastExpiryRemovesTheKey) {
  set(*b_, "k", "v");
  set(*b_, "k", "w", in(milliseconds(0)));
  EXPECT_EQ(get(*b_, "k"), std::nullopt);
  EXPECT_EQ(entries(*b_), 0u);
}

TEST_F(LocmemExpiry, AddStoresOnlyOverMissingOrExpiredKeys) {
  EXPECT_TRUE(*b_->add("k", "1", in(seconds(1))));
  EXPECT_FALSE(*b_->add("k", "2", Expiry::never()));
  EXPECT_EQ(get(*b_, "k"), "1");
  clock_.advance(seconds(1));
  EXPECT_TRUE(*b_->add("k", "3", Expiry::never()));
  EXPECT_EQ(get(*b_, "k"), "3");
  EXPECT_FALSE(*b_->add("k", "4", in(milliseconds(-5))));    // live: refused
  EXPECT_TRUE(*b_->add("free", "5", in(milliseconds(-5))));  // free: "stored" (nothing)
  EXPECT_EQ(get(*b_, "free"), std::nullopt);
}

TEST_F(LocmemExpiry, TouchSetsANewExpiryAndAPastOneRemovesTheKey) {
  set(*b_, "k", "v", in(seconds(1)));
  EXPECT_TRUE(*b_->touch("k", in(seconds(5))));
  clock_.advance(seconds(2));
  EXPECT_EQ(get(*b_, "k"), "v");
  EXPECT_TRUE(*b_->touch("k", in(milliseconds(0))));
  EXPECT_EQ(get(*b_, "k"), std::nullopt);
  EXPECT_FALSE(*b_->touch("k", Expiry::never()));
}

TEST_F(LocmemExpiry, IncrKeepsTheEntrysExpiry) {
  set(*b_, "n", "41", in(seconds(10)));
  clock_.advance(seconds(4));
  EXPECT_EQ(*b_->incr("n", 1), 42);
  EXPECT_EQ(b_->ttl("n")->remaining(), seconds(6));
  clock_.advance(seconds(6));
  EXPECT_EQ(get(*b_, "n"), std::nullopt);
}

TEST(Locmem, IncrStoresDecimalTextAndReportsBadValues) {
  auto b = lru_backend(10, std::nullopt);
  set(*b, "n", "-5");
  EXPECT_EQ(*b->incr("n", 7), 2);
  EXPECT_EQ(get(*b, "n"), "2");
  EXPECT_EQ(*b->incr("n", -10), -8);
  EXPECT_EQ(get(*b, "n"), "-8");
  EXPECT_STATUS(b->incr("missing", 1), StatusCode::kNotFound);
  set(*b, "text", "12a");
  EXPECT_STATUS(b->incr("text", 1), StatusCode::kFailedPrecondition);
  EXPECT_EQ(get(*b, "text"), "12a");
  set(*b, "big", std::to_string(INT64_MAX));
  EXPECT_STATUS(b->incr("big", 1), StatusCode::kOutOfRange);
  EXPECT_EQ(get(*b, "big"), std::to_string(INT64_MAX));
  EXPECT_EQ(*b->incr("big", INT64_MIN), -1);
  set(*b, "low", std::to_string(INT64_MIN + 1));
  EXPECT_EQ(*b->incr("low", -1), INT64_MIN);
  EXPECT_EQ(get(*b, "low"), std::to_string(INT64_MIN));
}

TEST(Locmem, GetSharesTheStoredBytesWithoutCopying) {
  auto b = lru_backend(10, std::nullopt);
  set(*b, "k", "shared value");
  auto first = b->get("k");
  auto second = b->get("k");
  ASSERT_OK(first);
  ASSERT_OK(second);
  ASSERT_TRUE(first->has_value() && second->has_value());
  EXPECT_EQ((*first)->data(), (*second)->data());
}

// Each Bytes keeps its entry's block alive; ASan reports any use after free here.
TEST(Locmem, ValueStaysValidAfterOverwriteEvictionClearAndDestruction) {
  auto b = lru_backend(1, std::nullopt);
  set(*b, "k", "first");
  Bytes overwritten = **b->get("k");
  set(*b, "k", "second");
  Bytes evicted = **b->get("k");
  set(*b, "other", "third");  // evicts k
  EXPECT_EQ(get(*b, "k"), std::nullopt);
  Bytes cleared = **b->get("other");
  ASSERT_OK(b->clear());
  set(*b, "last", "fourth");
  Bytes destroyed = **b->get("last");
  b.reset();
  EXPECT_EQ(overwritten, "first");
  EXPECT_EQ(evicted, "second");
  EXPECT_EQ(cleared, "third");
  EXPECT_EQ(destroyed, "fourth");
}

TEST(Locmem, TwoBackendsAreIsolated) {
  LocmemOptions o;
  o.location = "same-name";
  auto one = make_locmem_backend(o);
  auto two = make_locmem_backend(o);
  set(*one, "k", "1");
  EXPECT_EQ(get(*two, "k"), std::nullopt);
  ASSERT_OK(two->clear());
  EXPECT_EQ(get(*one, "k"), "1");
}

TEST(Locmem, ClearEmptiesEveryShard) {
  LocmemOptions o;
  o.max_entries = 1000;
  o.shards = 8;
  auto b = make_locmem_backend(o);
  for (int k = 0; k < 500; ++k) set(*b, std::to_string(k), "v");
  ASSERT_OK(b->clear());
  EXPECT_EQ(entries(*b), 0u);
  EXPECT_EQ(stat(*b, "bytes"), "0");
  for (int k = 0; k < 500; ++k) ASSERT_EQ(get(*b, std::to_string(k)), std::nullopt);
  set(*b, "again", "v");
  EXPECT_EQ(get(*b, "again"), "v");
}

TEST(Locmem, StoresEmptyKeysAndValuesAndBinaryBytes) {
  auto b = lru_backend(10, std::nullopt);
  set(*b, "", "empty key");
  set(*b, "empty", "");
  const std::string binary("a\0b\xff", 4);
  set(*b, binary, binary);
  EXPECT_EQ(get(*b, ""), "empty key");
  EXPECT_EQ(get(*b, "empty"), "");
  EXPECT_EQ(get(*b, binary), binary);
}

// Keys of one length that differ in a single byte, at any position, are different keys (the
// table compares short keys word by word; colliding keys meet only inside one chain, so the
// comparison is tested directly too).
TEST(Locmem, DistinguishesKeysThatDifferInOneByte) {
  auto b = lru_backend(2000, std::nullopt);
  for (std::size_t len = 1; len <= 24; ++len) {
    const std::string base(len, 'a');
    set(*b, base, base);
    for (std::size_t pos = 0; pos < len; ++pos) {
      std::string key = base;
      key[pos] = 'b';
      EXPECT_FALSE(locmem_internal::same_key(base, key)) << key;
      EXPECT_TRUE(locmem_internal::same_key(key, std::string(key))) << key;
      set(*b, key, key);
    }
    EXPECT_FALSE(locmem_internal::same_key(base, base + "a"));
  }
  for (std::size_t len = 1; len <= 24; ++len) {
    const std::string base(len, 'a');
    EXPECT_EQ(get(*b, base), base);
    for (std::size_t pos = 0; pos < len; ++pos) {
      std::string key = base;
      key[pos] = 'b';
      ASSERT_EQ(get(*b, key), key);
    }
  }
}

TEST(Locmem, RejectsOversizedKeysAndValuesWithoutCrashing) {
  auto b = lru_backend(10, std::nullopt);
  const std::string longest(65535, 'k');
  set(*b, longest, "ok");
  EXPECT_EQ(get(*b, longest), "ok");
  const std::string too_long(65536, 'k');
  EXPECT_STATUS(b->set(too_long, "v", Expiry::never()), StatusCode::kInvalidArgument);
  EXPECT_STATUS(b->add(too_long, "v", Expiry::never()), StatusCode::kInvalidArgument);
  EXPECT_STATUS(b->incr(too_long, 1), StatusCode::kInvalidArgument);
  EXPECT_EQ(get(*b, too_long), std::nullopt);
  // A 4 GiB + 1 value, reserved but never touched: refused before a byte is read.
  const std::size_t huge = (std::size_t{4} << 30) + 1;
  void* p = mmap(nullptr, huge, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::string_view value(static_cast<const char*>(p), huge);
  Status s = b->set("k", value, Expiry::never());
  EXPECT_STATUS(s, StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("4 GiB"), std::string::npos) << s.message();
  EXPECT_STATUS(b->add("k", value, Expiry::never()), StatusCode::kResourceExhausted);
  munmap(p, huge);
}

TEST(Locmem, DeclaresItsCapabilitiesAndStats) {
  auto b = make_locmem_backend();
  EXPECT_EQ(b->info().name, "locmem");
  EXPECT_TRUE(b->info().supports_keys);
  EXPECT_TRUE(b->info().supports_stats);
  EXPECT_FALSE(b->info().outlives_process);
  set(*b, "key", "value");
  EXPECT_EQ(stat(*b, "entries"), "1");
  EXPECT_EQ(stat(*b, "bytes"), "8");
  EXPECT_EQ(stat(*b, "max_entries"), "300");
  EXPECT_EQ(stat(*b, "shards"), "4");
  EXPECT_EQ(stat(*b, "evictions"), "0");
}

TEST(Locmem, WorksBehindTheCacheFacade) {
  ManualClock clock;
  LocmemOptions backend_options;
  backend_options.clock = &clock;
  CacheOptions cache_options;
  cache_options.clock = &clock;
  Cache cache(make_locmem_backend(backend_options), cache_options);
  EXPECT_TRUE(cache.set("greeting", "hello", 5));
  EXPECT_EQ(cache.get("greeting"), Bytes("hello"));
  EXPECT_STATUS(cache.incr("hits"), StatusCode::kNotFound);
  clock.advance(seconds(5));
  EXPECT_EQ(cache.get("greeting"), std::nullopt);
}

// ---- concurrency (also run under TSan) ----

TEST(Locmem, ConcurrentIncrReachesExactTotal) {
  auto b = make_locmem_backend();
  set(*b, "counter", "0");
  constexpr int kThreads = 8, kIncrements = 10'000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIncrements; ++i) ASSERT_OK(b->incr("counter", 1));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(get(*b, "counter"), std::to_string(kThreads * kIncrements));
}

// Writers store values that name their key; readers check every value they see belongs to
// the key they asked for and stays intact while writers overwrite and evict it.
TEST(Locmem, ConcurrentReadersAndWritersWithEvictionStayConsistent) {
  LocmemOptions o;
  o.max_entries = 64;
  o.shards = 4;
  o.max_bytes = 4096;
  auto b = make_locmem_backend(o);
  constexpr int kKeys = 200, kOps = 20'000;
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::uint32_t x = 2463534242u + t;
      std::vector<Bytes> held;
      for (int i = 0; i < kOps; ++i) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        std::string key = cat("k", std::to_string(x % kKeys));
        switch ((x >> 8) % 8) {
          case 0:
          case 1:
            (void)b->set(key, cat(key, "=", std::to_string(i)), Expiry::never());
            break;
          case 2:
            (void)b->add(key, cat(key, "=a"), Expiry::never());
            break;
          case 3:
            (void)b->erase(key);
            break;
          default: {
            auto v = b->get(key);
            if (!v.ok()) ++bad;
            if (v.ok() && v->has_value()) {
              if (!(*v)->view().starts_with(cat(key, "="))) ++bad;
              if (held.size() < 32) held.push_back(**v);
            }
          }
        }
      }
      for (const Bytes& h : held) bad += h.view().starts_with("k") ? 0 : 1;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(entries(*b), 64u);
  EXPECT_LE(std::stoul(stat(*b, "bytes")), 4096u);
}

TEST(Locmem, ConcurrentIncrAndTouchOnEvictingKeysKeepCountersIntegral) {
  auto b = lru_backend(8, 2u);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5'000; ++i) {
        std::string key = cat("c", std::to_string((i + t) % 16));
        (void)b->add(key, "0", Expiry::never());
        auto r = b->incr(key, 1);
        if (!r.ok() && r.code() != StatusCode::kNotFound) ++bad;  // evicted in between: fine
        (void)b->touch(key, Expiry::never());
        auto ttl = b->ttl(key);
        if (!ttl.ok()) ++bad;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_LE(entries(*b), 8u);
}

TEST(Locmem, ConcurrentWholeCacheCullsAndClearsDoNotDeadlock) {
  LocmemOptions o;
  o.max_entries = 32;
  o.shards = 4;
  o.cull_frequency = 0;
  auto b = make_locmem_backend(o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5'000; ++i) {
        (void)b->set(cat("t", std::to_string(t), ":", std::to_string(i)), "v", Expiry::never());
        if (i % 500 == 0) (void)b->clear();
        if (i % 100 == 0) (void)b->keys("*");
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(entries(*b), 32u);
}

}  // namespace
}  // namespace cachekit
