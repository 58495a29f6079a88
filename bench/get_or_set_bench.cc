// get_or_set micro benchmarks (see BENCHMARKS.md, "Single-flight and stale-while-revalidate"):
//
//  1. Hits through get_or_set on ONE hot key vs hits spread over 256 keys, 1 and 2 threads:
//     a hit must not touch the flight table, so the hot key must not convoy (target ≥ 0.5×).
//  2. A get_or_set hit vs a plain get hit on one thread (target ≤ 1.2× the cost).
//  3. 500 concurrent cold requests for one key, the loader taking 50 ms: loader calls (must be
//     1) and the waiters' p99 latency (target ≤ loader + 10 ms), as counters.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace {

constexpr int kSpreadKeys = 256;  // under locmem's default max_entries (300): all hits

cachekit::Cache& shared_cache() {
  static cachekit::Cache cache(cachekit::make_locmem_backend());
  static const bool filled = [] {
    for (int i = 0; i < kSpreadKeys; ++i)
      cache.set("k" + std::to_string(i), "value", cachekit::kNever);
    return true;
  }();
  (void)filled;
  return cache;
}

std::vector<std::string> key_names() {
  std::vector<std::string> names;
  for (int i = 0; i < kSpreadKeys; ++i) names.push_back("k" + std::to_string(i));
  return names;
}

void BM_GetOrSetHitHotKey(benchmark::State& state) {
  cachekit::Cache& cache = shared_cache();
  for (auto _ : state) {
    benchmark::DoNotOptimize(cache.get_or_set("k0", [] { return std::string("value"); }));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetOrSetHitHotKey)->Threads(1)->Threads(2)->UseRealTime();

void BM_GetOrSetHitSpreadKeys(benchmark::State& state) {
  cachekit::Cache& cache = shared_cache();
  static const std::vector<std::string> names = key_names();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 997;
  for (auto _ : state) {
    const std::string& key = names[i++ % names.size()];
    benchmark::DoNotOptimize(cache.get_or_set(key, [] { return std::string("value"); }));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GetOrSetHitSpreadKeys)->Threads(1)->Threads(2)->UseRealTime();

void BM_PlainGetHit(benchmark::State& state) {
  cachekit::Cache& cache = shared_cache();
  for (auto _ : state) benchmark::DoNotOptimize(cache.get("k0"));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PlainGetHit)->UseRealTime();

// 500 threads miss one cold key at once; the loader sleeps 50 ms (an upstream call).
void BM_ColdKeyHerd(benchmark::State& state) {
  constexpr int kRequests = 500;
  constexpr auto kLoader = std::chrono::milliseconds(50);
  double loader_calls = 0, p99_ms = 0, max_ms = 0;
  int round = 0;
  for (auto _ : state) {
    cachekit::Cache cache(cachekit::make_locmem_backend());
    std::atomic<int> calls{0};
    std::vector<double> latencies(kRequests);
    std::latch start(kRequests);
    {
      std::vector<std::jthread> threads;
      for (int t = 0; t < kRequests; ++t) {
        threads.emplace_back([&, t] {
          start.arrive_and_wait();
          auto begin = std::chrono::steady_clock::now();
          benchmark::DoNotOptimize(cache.get_or_set("cold", [&] {
            ++calls;
            std::this_thread::sleep_for(kLoader);
            return std::string("value");
          }));
          latencies[t] =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin)
                  .count();
        });
      }
    }
    std::sort(latencies.begin(), latencies.end());
    loader_calls += calls.load();
    p99_ms += latencies[kRequests * 99 / 100];
    max_ms = std::max(max_ms, latencies.back());
    ++round;
  }
  state.counters["loader_calls_per_round"] = loader_calls / round;
  state.counters["p99_ms"] = p99_ms / round;
  state.counters["max_ms"] = max_ms;
  state.counters["loader_ms"] = static_cast<double>(kLoader.count());
}
BENCHMARK(BM_ColdKeyHerd)->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
