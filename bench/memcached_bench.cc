// The memcached backend through the Cache façade, side by side with a raw libmemcached loop
// configured with the same behaviours (binary protocol, ketama, TCP_NODELAY, the same
// timeouts), on the same servers, the same keys (the façade's final keys, ":1:bench:<i>") and
// the same 100-byte values, at equal concurrency (Threads(n): n client threads each way; the raw
// loop gives each thread its own memcached_st, the façade shares one backend and its pool).
//
//   memcached -l 127.0.0.1 -p 22122 -U 0 -t 1 -u root &        # pin it: taskset -c 0
//   CACHEKIT_BENCH_MEMCACHED=127.0.0.1:22122 taskset -c 1 build-release/bench/memcached_bench
//       --benchmark_min_time=0.5 --benchmark_repetitions=3 --benchmark_enable_random_interleaving
//
// BENCHMARKS.md (section "Memcached backend") has the figures and the exact commands.
#include <benchmark/benchmark.h>
#include <cachekit/backends/memcached.h>
#include <cachekit/cache.h>
#include <libmemcached/memcached.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
constexpr int kKeys = 1024;  // a power of two: the loops mask instead of dividing
constexpr std::size_t kValueBytes = 100;
constexpr int kBatch = 100;

struct Setup {
  std::vector<std::string> servers;
  std::vector<std::string> caller_keys;  // "bench:<i>"
  std::vector<std::string> final_keys;   // ":1:bench:<i>", what the façade sends
  std::string value = std::string(kValueBytes, 'v');
  std::unique_ptr<cachekit::Cache> cache;
};

Setup& setup() {
  static Setup* s = [] {
    auto* s = new Setup;
    const char* env = std::getenv("CACHEKIT_BENCH_MEMCACHED");
    auto servers = cachekit::parse_memcached_locations(env != nullptr ? env : "");
    if (!servers.ok()) {
      std::fprintf(stderr, "set CACHEKIT_BENCH_MEMCACHED=host:port[,host:port]: %s\n",
                   servers.status().to_string().c_str());
      std::exit(2);
    }
    s->servers = *servers;
    for (int i = 0; i < kKeys; ++i) {
      s->caller_keys.push_back("bench:" + std::to_string(i));
      s->final_keys.push_back(":1:" + s->caller_keys.back());
    }
    auto backend = cachekit::make_memcached_backend({.servers = s->servers});
    if (!backend.ok()) std::exit(2);
    s->cache = std::make_unique<cachekit::Cache>(*backend);
    for (const auto& key : s->caller_keys) s->cache->set(key, s->value, cachekit::kNever);
    return s;
  }();
  return *s;
}

// A raw handle with exactly the behaviours make_memcached_backend sets by default.
memcached_st* raw_handle() {
  memcached_st* m = memcached_create(nullptr);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_BINARY_PROTOCOL, 1);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_KETAMA, 1);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_TCP_NODELAY, 1);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, 200);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, 200);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SERVER_FAILURE_LIMIT, 2);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 2);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_DEAD_TIMEOUT, 2);
  memcached_behavior_set(m, MEMCACHED_BEHAVIOR_REMOVE_FAILED_SERVERS, 1);
  for (const auto& server : setup().servers) {
    auto colon = server.rfind(':');
    memcached_server_add(m, server.substr(0, colon).c_str(),
                         static_cast<in_port_t>(std::stoi(server.substr(colon + 1))));
  }
  return m;
}

struct RawHandle {
  memcached_st* m = raw_handle();
  ~RawHandle() { memcached_free(m); }
};

void BM_Raw_Get(benchmark::State& state) {
  Setup& s = setup();
  RawHandle raw;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    const std::string& key = s.final_keys[i++ & (kKeys - 1)];
    std::size_t length = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc{};
    char* value = memcached_get(raw.m, key.data(), key.size(), &length, &flags, &rc);
    if (rc != MEMCACHED_SUCCESS) state.SkipWithError("raw get missed");
    // The façade hands out an owned copy (Bytes); the raw loop does the same.
    std::string copy(value, length);
    benchmark::DoNotOptimize(copy);
    std::free(value);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Cache_Get(benchmark::State& state) {
  Setup& s = setup();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    auto value = s.cache->get(s.caller_keys[i++ & (kKeys - 1)]);
    if (!value) state.SkipWithError("cache get missed");
    benchmark::DoNotOptimize(value);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Raw_Set(benchmark::State& state) {
  Setup& s = setup();
  RawHandle raw;
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    const std::string& key = s.final_keys[i++ & (kKeys - 1)];
    memcached_return_t rc =
        memcached_set(raw.m, key.data(), key.size(), s.value.data(), s.value.size(), 301, 0);
    if (rc != MEMCACHED_SUCCESS) state.SkipWithError("raw set failed");
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Cache_Set(benchmark::State& state) {
  Setup& s = setup();
  std::size_t i = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    if (!s.cache->set(s.caller_keys[i++ & (kKeys - 1)], s.value, 300)) {
      state.SkipWithError("cache set failed");
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// 100 keys per call with one multi-get, against the same 100 keys fetched one get at a time.
void BM_Cache_GetMany100(benchmark::State& state) {
  Setup& s = setup();
  std::size_t start = static_cast<std::size_t>(state.thread_index()) * 97;
  std::vector<std::string_view> batch(kBatch);
  for (auto _ : state) {
    for (int k = 0; k < kBatch; ++k) batch[k] = s.caller_keys[(start + k) & (kKeys - 1)];
    start += kBatch;
    auto values = s.cache->get_many(batch);
    if (values.size() != kBatch) state.SkipWithError("get_many missed");
    benchmark::DoNotOptimize(values);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_Cache_Get100Singles(benchmark::State& state) {
  Setup& s = setup();
  std::size_t start = static_cast<std::size_t>(state.thread_index()) * 97;
  for (auto _ : state) {
    for (int k = 0; k < kBatch; ++k) {
      auto value = s.cache->get(s.caller_keys[(start + k) & (kKeys - 1)]);
      benchmark::DoNotOptimize(value);
    }
    start += kBatch;
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_Raw_GetMany100(benchmark::State& state) {
  Setup& s = setup();
  RawHandle raw;
  std::size_t start = static_cast<std::size_t>(state.thread_index()) * 97;
  std::vector<const char*> keys(kBatch);
  std::vector<std::size_t> lengths(kBatch);
  memcached_result_st storage;
  for (auto _ : state) {
    for (int k = 0; k < kBatch; ++k) {
      const std::string& key = s.final_keys[(start + k) & (kKeys - 1)];
      keys[k] = key.data();
      lengths[k] = key.size();
    }
    start += kBatch;
    memcached_mget(raw.m, keys.data(), lengths.data(), kBatch);
    memcached_result_st* result = memcached_result_create(raw.m, &storage);
    memcached_return_t rc{};
    int found = 0;
    while (memcached_fetch_result(raw.m, result, &rc) != nullptr) {
      std::string copy(memcached_result_value(result), memcached_result_length(result));
      benchmark::DoNotOptimize(copy);
      ++found;
    }
    memcached_result_free(result);
    if (found != kBatch) state.SkipWithError("raw get_many missed");
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Raw and façade are registered in pairs so that a plain run already interleaves them.
#define CACHEKIT_PAIR(bench) BENCHMARK(bench)->UseRealTime()->Threads(1)->Threads(4)
CACHEKIT_PAIR(BM_Raw_Get);
CACHEKIT_PAIR(BM_Cache_Get);
CACHEKIT_PAIR(BM_Raw_Set);
CACHEKIT_PAIR(BM_Cache_Set);
CACHEKIT_PAIR(BM_Raw_GetMany100);
CACHEKIT_PAIR(BM_Cache_GetMany100);
CACHEKIT_PAIR(BM_Cache_Get100Singles);

}  // namespace

BENCHMARK_MAIN();
