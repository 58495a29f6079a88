// locmem micro benchmarks (see BENCHMARKS.md for the figures and the command).
//
//  1. Read hits over 2^20 entries with scrambled Zipf keys (theta 0.99): cachekit::Cache::get
//     (the façade users call, over make_locmem_backend) against an unsynchronised
//     std::unordered_map<std::string, std::string>::find, 1 and 2 threads.
//  2. 75 % get / 25 % set with eviction (capacity 10 % of the key space), 1 and 2 threads:
//     cachekit against a std::mutex + std::unordered_map + std::list LRU written the way a
//     typical user would (get returns a copy of the value).
//  3. Memory per entry beyond key + value bytes (mallinfo2 before/after 2^20 entries).
//
// Keys are pre-generated (YCSB's Zipfian generator, scrambled by a bijection of the rank) and
// each thread walks the array from its own offset, so no RNG runs in the timed loop
// (Caffeine's GetPutBenchmark method).

#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cmath>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace {

constexpr std::size_t kKeySpace = std::size_t{1} << 20;  // "1M entries"
constexpr std::size_t kSamples = std::size_t{1} << 20;   // pre-generated accesses
constexpr std::size_t kMixedCapacity = kKeySpace / 10;   // 10 % of the key space
constexpr std::size_t kValueBytes = 32;

// YCSB's ZipfianGenerator (Gray et al., "Quickly generating billion-record synthetic
// databases"), ranks in [0, n).
class Zipf {
 public:
  Zipf(std::uint64_t n, double theta) : n_(n), theta_(theta) {
    for (std::uint64_t i = 1; i <= n; ++i) zeta_n_ += 1.0 / std::pow(double(i), theta);
    const double zeta2 = 1.0 + 1.0 / std::pow(2.0, theta);
    alpha_ = 1.0 / (1.0 - theta);
    eta_ = (1.0 - std::pow(2.0 / double(n), 1.0 - theta)) / (1.0 - zeta2 / zeta_n_);
  }
  template <class Rng>
  std::uint64_t next(Rng& rng) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
    const double uz = u * zeta_n_;
    if (uz < 1.0) return 0;
    if (uz < 1.0 + std::pow(0.5, theta_)) return 1;
    auto r = static_cast<std::uint64_t>(double(n_) * std::pow(eta_ * u - eta_ + 1.0, alpha_));
    return r < n_ ? r : n_ - 1;
  }

 private:
  std::uint64_t n_;
  double theta_, zeta_n_ = 0, alpha_ = 0, eta_ = 0;
};

// Built by append: g++ 12 -O3 warns falsely (-Wrestrict, GCC PR 105329) on "k" + string.
std::string key_of(std::uint64_t id, std::string_view prefix = "") {
  std::string key(prefix);
  key.append("k").append(std::to_string(id));
  return key;
}

// Scrambled: popular ranks are spread over the key space (odd multiplier mod 2^20 is a
// bijection), so hot keys do not cluster in one shard or bucket.
const std::vector<std::string>& zipf_keys() {
  static const std::vector<std::string> keys = [] {
    std::mt19937_64 rng(42);
    Zipf zipf(kKeySpace, 0.99);
    std::vector<std::string> out;
    out.reserve(kSamples);
    for (std::size_t i = 0; i < kSamples; ++i) {
      out.push_back(key_of((zipf.next(rng) * 0x9E3779B1u + 12345) & (kKeySpace - 1)));
    }
    return out;
  }();
  return keys;
}

const std::string& value() {
  static const std::string v(kValueBytes, 'v');
  return v;
}

std::size_t start_index(const benchmark::State& state) {
  return kSamples / static_cast<std::size_t>(state.threads()) *
         static_cast<std::size_t>(state.thread_index());
}

// ---- 1. read hits ----

cachekit::Cache& full_cache() {
  static cachekit::Cache* cache = [] {
    // Each shard bounds its own share, and keys do not spread perfectly evenly over shards:
    // 25 % headroom lets every shard hold its keys, so every read below is a hit.
    cachekit::LocmemOptions o;
    o.max_entries = kKeySpace + kKeySpace / 4;
    auto* c = new cachekit::Cache(cachekit::make_locmem_backend(o));
    for (std::size_t id = 0; id < kKeySpace; ++id) {
      c->set(key_of(id), value(), std::chrono::hours(24));  // expiring: get checks the clock
    }
    return c;
  }();
  return *cache;
}

const std::unordered_map<std::string, std::string>& full_map() {
  static const auto* map = [] {
    auto* m = new std::unordered_map<std::string, std::string>();
    for (std::size_t id = 0; id < kKeySpace; ++id) m->emplace(key_of(id), value());
    return m;
  }();
  return *map;
}

void BM_ReadHit_CachekitGet(benchmark::State& state) {
  const auto& keys = zipf_keys();
  cachekit::Cache& cache = full_cache();
  std::size_t i = start_index(state), misses = 0;
  for (auto _ : state) {
    auto v = cache.get(keys[i++ & (kSamples - 1)]);
    misses += v ? 0 : 1;
    benchmark::DoNotOptimize(v);
  }
  if (misses != 0) state.SkipWithError("a read missed: the cache must hold every key");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadHit_CachekitGet)->Threads(1)->UseRealTime();
BENCHMARK(BM_ReadHit_CachekitGet)->Threads(2)->UseRealTime();

void BM_ReadHit_UnorderedMapFind(benchmark::State& state) {
  const auto& keys = zipf_keys();
  const auto& map = full_map();
  std::size_t i = start_index(state), misses = 0;
  for (auto _ : state) {
    auto it = map.find(keys[i++ & (kSamples - 1)]);
    misses += it == map.end() ? 1 : 0;
    benchmark::DoNotOptimize(it);
  }
  if (misses != 0) state.SkipWithError("a read missed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReadHit_UnorderedMapFind)->Threads(1)->UseRealTime();

// ---- 2. mixed reads and writes with eviction ----

// The LRU cache a typical user writes: one mutex, a map to list iterators, and values
// copied out so they stay valid after the lock is released.
class MutexLru {
 public:
  explicit MutexLru(std::size_t capacity) : capacity_(capacity) {}

  std::optional<std::string> get(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it == index_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second);
    return it->second->second;
  }

  void set(const std::string& key, const std::string& value) {
    std::lock_guard lock(mutex_);
    auto it = index_.find(key);
    if (it != index_.end()) {
      it->second->second = value;
      order_.splice(order_.begin(), order_, it->second);
      return;
    }
    if (index_.size() >= capacity_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    order_.emplace_front(key, value);
    index_.emplace(key, order_.begin());
  }

 private:
  using Order = std::list<std::pair<std::string, std::string>>;
  std::mutex mutex_;
  std::size_t capacity_;
  Order order_;
  std::unordered_map<std::string, Order::iterator> index_;
};

cachekit::Cache& mixed_cache() {
  static cachekit::Cache* cache = [] {
    cachekit::LocmemOptions o;
    o.max_entries = kMixedCapacity;
    return new cachekit::Cache(cachekit::make_locmem_backend(o));
  }();
  return *cache;
}

MutexLru& mixed_lru() {
  static auto* lru = new MutexLru(kMixedCapacity);
  return *lru;
}

// Every fourth access is a write; the rest are reads (75 % / 25 %).
void BM_Mixed75_CachekitCache(benchmark::State& state) {
  const auto& keys = zipf_keys();
  cachekit::Cache& cache = mixed_cache();
  std::size_t i = start_index(state), hits = 0;
  for (auto _ : state) {
    const std::string& key = keys[i & (kSamples - 1)];
    if ((i++ & 3) == 0) {
      cache.set(key, value());
    } else {
      auto v = cache.get(key);
      hits += v ? 1 : 0;
      benchmark::DoNotOptimize(v);
    }
  }
  state.counters["read_hit_ratio"] = benchmark::Counter(
      double(hits) / (double(state.iterations()) * 0.75), benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mixed75_CachekitCache)->Threads(1)->UseRealTime();
BENCHMARK(BM_Mixed75_CachekitCache)->Threads(2)->UseRealTime();

void BM_Mixed75_MutexLru(benchmark::State& state) {
  const auto& keys = zipf_keys();
  MutexLru& lru = mixed_lru();
  std::size_t i = start_index(state), hits = 0;
  for (auto _ : state) {
    const std::string& key = keys[i & (kSamples - 1)];
    if ((i++ & 3) == 0) {
      lru.set(key, value());
    } else {
      auto v = lru.get(key);
      hits += v ? 1 : 0;
      benchmark::DoNotOptimize(v);
    }
  }
  state.counters["read_hit_ratio"] = benchmark::Counter(
      double(hits) / (double(state.iterations()) * 0.75), benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Mixed75_MutexLru)->Threads(1)->UseRealTime();
BENCHMARK(BM_Mixed75_MutexLru)->Threads(2)->UseRealTime();

// ---- 3. memory per entry ----

std::size_t heap_in_use() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;  // small chunks (with their headers) + mmapped blocks
}

// Stores 2^20 entries with final keys as the façade makes them (":1:k<id>") straight into
// the backend and reports the heap growth beyond the key and value bytes: the entry header,
// the bucket arrays and malloc's own chunk header and 16-byte rounding. arg 0: 32-byte
// values; arg 1: 16..79-byte values, which averages the rounding out.
void BM_MemoryPerEntry(benchmark::State& state) {
  const bool varied = state.range(0) == 1;
  for (auto _ : state) {
    const std::size_t before = heap_in_use();
    cachekit::LocmemOptions o;
    o.max_entries = kKeySpace;
    auto backend = cachekit::make_locmem_backend(o);
    const std::string values(128, 'v');
    std::size_t payload = 0;
    for (std::size_t id = 0; id < kKeySpace; ++id) {
      const std::string key = key_of(id, ":1:");
      const std::size_t len = varied ? 16 + id % 64 : kValueBytes;
      (void)backend->set(key, std::string_view(values).substr(0, len), cachekit::Expiry());
      payload += key.size() + len;
    }
    const std::size_t after = heap_in_use();
    state.counters["entries"] = double(kKeySpace);
    state.counters["payload_B_per_entry"] = double(payload) / double(kKeySpace);
    state.counters["overhead_B_per_entry"] =
        (double(after) - double(before) - double(payload)) / double(kKeySpace);
  }
}
BENCHMARK(BM_MemoryPerEntry)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
