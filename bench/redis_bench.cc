// redis_bench: cachekit's Redis backend driven through the Cache façade, in the shapes
// redis-benchmark and redis-cli measure, so the two can be run side by side on one server
// (see BENCHMARKS.md for the protocol and figures).
//
//   redis_bench --url redis://127.0.0.1:6379/0 --mode get --threads 50 --seconds 10 --size 100
//   (--url redis-cluster://127.0.0.1:7000,127.0.0.1:7001: a Redis Cluster)
//   modes: get, set        one key per call, each thread making synchronous calls
//                          (--timeout S or never: the sets' timeout, default 300)
//          get_many, set_many  --batch keys per call (reported in keys/s)
//          latency         one thread, one get every --interval-ms (redis-cli --latency
//                          samples every 10 ms), reports avg/p50/p99 in microseconds
//
// Keys are "key:<n>" for n in [0, --keys), drawn by a per-thread xorshift; get modes fill
// them first. The pool has --connections connections (default: the thread count).
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"

namespace {

using Steady = std::chrono::steady_clock;

struct Args {
  std::string url = "redis://127.0.0.1:6379/0";
  std::string mode = "get";
  int threads = 50;
  int connections = 0;
  double seconds = 10;
  std::size_t size = 100;
  int batch = 100;
  int keys = 10'000;
  int interval_ms = 10;
  std::string timeout = "300";  // seconds for set modes, or "never" (no PX, as redis-benchmark)
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string name = argv[i];
    const char* v = argv[i + 1];
    if (name == "--url")
      a.url = v;
    else if (name == "--mode")
      a.mode = v;
    else if (name == "--threads")
      a.threads = std::atoi(v);
    else if (name == "--connections")
      a.connections = std::atoi(v);
    else if (name == "--seconds")
      a.seconds = std::atof(v);
    else if (name == "--size")
      a.size = static_cast<std::size_t>(std::atol(v));
    else if (name == "--batch")
      a.batch = std::atoi(v);
    else if (name == "--keys")
      a.keys = std::atoi(v);
    else if (name == "--timeout")
      a.timeout = v;
    else if (name == "--interval-ms")
      a.interval_ms = std::atoi(v);
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      std::exit(2);
    }
  }
  return a;
}

struct XorShift {
  std::uint64_t state;
  std::uint64_t next() {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  }
};

std::string key_name(std::uint64_t n) { return "key:" + std::to_string(n); }

void fill(cachekit::Cache& cache, const Args& a, const std::string& value) {
  std::vector<std::pair<std::string, std::string>> items;
  for (int k = 0; k < a.keys; ++k) {
    items.emplace_back(key_name(static_cast<std::uint64_t>(k)), value);
    if (items.size() == 1000 || k + 1 == a.keys) {
      if (!cache.set_many(items, cachekit::kNever).empty()) std::fprintf(stderr, "fill failed\n");
      items.clear();
    }
  }
}

// One thread's loop: calls `op` until told to stop; returns (calls, failures).
template <class Op>
std::pair<std::uint64_t, std::uint64_t> spin(const std::atomic<bool>& stop, Op&& op) {
  std::uint64_t calls = 0, failures = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    if (!op()) ++failures;
    ++calls;
  }
  return {calls, failures};
}

int throughput(cachekit::Cache& cache, const Args& a, const std::string& value) {
  bool batch = a.mode == "get_many" || a.mode == "set_many";
  cachekit::Timeout timeout =
      a.timeout == "never" ? cachekit::kNever : cachekit::Timeout(std::atof(a.timeout.c_str()));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> calls{0}, failures{0};
  std::barrier start(a.threads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      XorShift rng{0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(t + 1)};
      std::vector<std::string> keys(static_cast<std::size_t>(a.batch));
      std::vector<std::pair<std::string, std::string>> items;
      auto one_key = [&] { return key_name(rng.next() % static_cast<std::uint64_t>(a.keys)); };
      auto op = [&]() -> bool {
        if (a.mode == "get") return cache.get(one_key()).has_value();
        if (a.mode == "set") return cache.set(one_key(), value, timeout);
        if (a.mode == "get_many") {
          for (auto& k : keys) k = one_key();
          (void)cache.get_many(keys);  // random keys may repeat, so no size check
          return true;
        }
        items.clear();
        for (int i = 0; i < a.batch; ++i) items.emplace_back(one_key(), value);
        return cache.set_many(items, timeout).empty();
      };
      start.arrive_and_wait();
      auto [c, f] = spin(stop, op);
      calls += c;
      failures += f;
    });
  }
  start.arrive_and_wait();
  auto began = Steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = std::chrono::duration<double>(Steady::now() - began).count();
  double per_second = static_cast<double>(calls) / elapsed;
  std::printf("mode=%s threads=%d size=%zu calls=%llu failures=%llu calls_per_s=%.0f",
              a.mode.c_str(), a.threads, a.size, static_cast<unsigned long long>(calls.load()),
              static_cast<unsigned long long>(failures.load()), per_second);
  if (batch) std::printf(" keys_per_s=%.0f", per_second * a.batch);
  std::printf("\n");
  return failures == 0 || a.mode == "get" ? 0 : 1;
}

int latency(cachekit::Cache& cache, const Args& a) {
  std::vector<double> us;
  auto until = Steady::now() + std::chrono::duration<double>(a.seconds);
  XorShift rng{42};
  while (Steady::now() < until) {
    std::string key = key_name(rng.next() % static_cast<std::uint64_t>(a.keys));
    auto t0 = Steady::now();
    bool hit = cache.get(key).has_value();
    auto t1 = Steady::now();
    if (!hit) std::fprintf(stderr, "miss on %s\n", key.c_str());
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (a.interval_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(a.interval_ms));
  }
  std::sort(us.begin(), us.end());
  double sum = 0;
  for (double v : us) sum += v;
  auto at = [&](double q) {
    return us[static_cast<std::size_t>(q * static_cast<double>(us.size() - 1))];
  };
  std::printf(
      "mode=latency interval_ms=%d samples=%zu avg_us=%.1f p50_us=%.1f p99_us=%.1f min_us=%.1f\n",
      a.interval_ms, us.size(), sum / static_cast<double>(us.size()), at(0.5), at(0.99),
      us.front());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  cachekit::RedisOptions options;
  options.locations = {a.url};
  // redis-cluster://h:p,h:p: a Redis Cluster seeded from those nodes (cluster_compare.sh).
  const std::string_view cluster_scheme = "redis-cluster://";
  const bool cluster = std::string_view(a.url).starts_with(cluster_scheme);
  if (cluster) {
    options.locations.clear();
    std::string_view nodes = std::string_view(a.url).substr(cluster_scheme.size());
    for (std::size_t at = 0; at != std::string_view::npos;) {
      auto comma = nodes.find(',', at);
      options.locations.push_back("redis://" + std::string(nodes.substr(at, comma - at)));
      at = comma == std::string_view::npos ? comma : comma + 1;
    }
  }
  options.pool_size = static_cast<std::size_t>(a.connections > 0 ? a.connections : a.threads);
  options.io_timeout = std::chrono::seconds(2);
  options.pool_wait = std::chrono::seconds(2);
  auto backend = cluster ? cachekit::make_redis_cluster_backend(options)
                         : cachekit::make_redis_backend(options);
  if (!backend.ok()) {
    std::fprintf(stderr, "%s\n", backend.status().to_string().c_str());
    return 2;
  }
  cachekit::Cache cache(*backend, {.max_error_logs_per_second = 1});
  std::string value(a.size, 'x');
  if (a.mode == "get" || a.mode == "get_many" || a.mode == "latency") fill(cache, a, value);
  if (a.mode == "latency") return latency(cache, a);
  return throughput(cache, a, value);
}
