// tiered_bench: the two-tier backend against plain locmem and plain Redis, on one
// redis-server (see BENCHMARKS.md, "Two tiers", for the protocol and figures).
//
//   tiered_bench --url redis://127.0.0.1:6379/0 --mode zipf --store tiered --threads 2
//   modes:
//     zipf          reads drawn from Zipf(--s, default 0.99) over --keys (100 000) keys, all
//                   stored first; --store locmem | redis | tiered (local tier of --local
//                   entries). Prints reads/s, the local hit ratio and the Redis commands the
//                   reads cost (the server's total_commands_processed before and after).
//                   --warm 1 reads every key once before measuring (fills the local tier).
//     invalidation  two tiered backends (each with its own connections and change feed, as
//                   two processes have): a reader holding a key locally, a writer changing
//                   it --rounds times. Prints the distribution of the time from the writer's
//                   set() returning to the reader first seeing the new value, and how many
//                   reads after that + --bound-ms still returned the old one.
#include <algorithm>
#include <atomic>
#include <barrier>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/backends/redis.h"
#include "cachekit/backends/tiered.h"

namespace {

using Steady = std::chrono::steady_clock;
using cachekit::Backend;
using cachekit::Expiry;

struct Args {
  std::string url = "redis://127.0.0.1:6379/0";
  std::string mode = "zipf";
  std::string store = "tiered";
  int threads = 2;
  double seconds = 10;
  int keys = 100'000;
  int local = 10'000;
  double s = 0.99;
  int rounds = 2000;
  double bound_ms = 5;
  bool warm = false;
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
    else if (name == "--store")
      a.store = v;
    else if (name == "--threads")
      a.threads = std::atoi(v);
    else if (name == "--seconds")
      a.seconds = std::atof(v);
    else if (name == "--keys")
      a.keys = std::atoi(v);
    else if (name == "--local")
      a.local = std::atoi(v);
    else if (name == "--s")
      a.s = std::atof(v);
    else if (name == "--rounds")
      a.rounds = std::atoi(v);
    else if (name == "--warm")
      a.warm = std::atoi(v) != 0;
    else if (name == "--bound-ms")
      a.bound_ms = std::atof(v);
    else {
      std::fprintf(stderr, "unknown argument %s\n", name.c_str());
      std::exit(2);
    }
  }
  return a;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "tiered_bench: %s\n", what.c_str());
  std::exit(1);
}

std::shared_ptr<Backend> redis(const Args& a, const std::string& ns) {
  auto made = cachekit::make_redis_backend({.locations = {a.url},
                                            .io_timeout = std::chrono::seconds(2),
                                            .pool_size = 64,
                                            .key_namespace = ns});
  if (!made.ok()) die(made.status().to_string());
  return *made;
}

std::shared_ptr<Backend> tiered(const Args& a, const std::string& ns, int local) {
  auto made = cachekit::make_tiered_backend(
      {.shared = redis(a, ns), .local = {.max_entries = static_cast<std::size_t>(local)}});
  if (!made.ok()) die(made.status().to_string());
  const auto deadline = Steady::now() + std::chrono::seconds(5);
  for (;;) {  // wait for the change feed: until then every read bypasses the local tier
    auto stats = (*made)->stats();
    bool live = false;
    for (const auto& [k, v] : *stats) live = live || (k == "feed_live" && v == "yes");
    if (live) break;
    if (Steady::now() > deadline) die("the change feed did not come up");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return *made;
}

std::string stat(Backend& b, std::string_view name) {
  auto stats = b.stats();
  if (!stats.ok()) return "?";
  for (const auto& [k, v] : *stats) {
    if (k == name) return v;
  }
  return "?";
}

// total_commands_processed of the server behind `b` (a plain Redis backend's stats).
long long commands(Backend& b, std::string_view prefix) {
  std::string v = stat(b, std::string(prefix) + "total_commands_processed");
  return v == "?" ? -1 : std::atoll(v.c_str());
}

struct Xorshift {
  std::uint64_t x;
  std::uint64_t next() {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

int run_zipf(const Args& a) {
  std::vector<double> cdf(static_cast<std::size_t>(a.keys));
  double sum = 0;
  for (int i = 0; i < a.keys; ++i)
    cdf[static_cast<std::size_t>(i)] = sum += 1 / std::pow(i + 1, a.s);
  for (double& c : cdf) c /= sum;
  std::vector<std::string> keys;
  for (int i = 0; i < a.keys; ++i) keys.push_back("key:" + std::to_string(i));

  const std::string ns = "tiered-bench:" + std::to_string(::getpid()) + ":";
  std::shared_ptr<Backend> plain_redis = redis(a, ns);  // also reads the server's counters
  std::shared_ptr<Backend> store;
  if (a.store == "locmem") {
    store = cachekit::make_locmem_backend({.max_entries = static_cast<std::size_t>(a.local)});
  } else if (a.store == "redis") {
    store = plain_redis;
  } else if (a.store == "tiered") {
    store = tiered(a, ns, a.local);
  } else {
    die("--store is locmem, redis or tiered");
  }
  const std::string value(100, 'v');
  Backend& fill = a.store == "locmem" ? *store : *plain_redis;
  for (const auto& k : keys) (void)fill.set(k, value, Expiry::never());
  if (a.warm) {
    for (const auto& k : keys) (void)store->get(k);
  }
  const double local_before = std::atof(stat(*store, "local_hits").c_str());
  const double shared_before = std::atof(stat(*store, "shared_hits").c_str());

  std::atomic<bool> stop{false};
  std::vector<long long> reads(static_cast<std::size_t>(a.threads));
  std::barrier start(a.threads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      Xorshift rng{0x9E3779B97F4A7C15ULL * static_cast<std::uint64_t>(t + 1)};
      long long n = 0;
      start.arrive_and_wait();
      while (!stop.load(std::memory_order_relaxed)) {
        double u = rng.uniform();
        auto i = std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
        (void)store->get(keys[static_cast<std::size_t>(std::min<long>(i, a.keys - 1))]);
        ++n;
      }
      reads[static_cast<std::size_t>(t)] = n;
    });
  }
  const long long before = commands(*plain_redis, "");
  start.arrive_and_wait();
  const auto began = Steady::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  stop.store(true);
  for (auto& th : threads) th.join();
  const double elapsed = std::chrono::duration<double>(Steady::now() - began).count();
  const long long after = commands(*plain_redis, "");
  long long total = 0;
  for (long long n : reads) total += n;
  std::printf(
      "store=%s threads=%d keys=%d s=%.2f local=%d reads=%lld reads_per_s=%.0f "
      "redis_commands=%lld commands_per_read=%.4f",
      a.store.c_str(), a.threads, a.keys, a.s, a.local, total, total / elapsed, after - before - 1,
      static_cast<double>(after - before - 1) / static_cast<double>(total));
  if (a.store == "tiered") {
    double local = std::atof(stat(*store, "local_hits").c_str()) - local_before;
    double shared = std::atof(stat(*store, "shared_hits").c_str()) - shared_before;
    std::printf(" local_hit_ratio=%.4f", local / std::max(1.0, local + shared));
  }
  std::printf("\n");
  (void)plain_redis->clear();
  return 0;
}

int run_invalidation(const Args& a) {
  const std::string ns = "tiered-bench:" + std::to_string(::getpid()) + ":";
  auto reader = tiered(a, ns, 1000);
  auto writer = tiered(a, ns, 1000);
  const auto bound = std::chrono::duration<double, std::milli>(a.bound_ms);
  std::vector<double> seen_ms;
  long long stale_after_bound = 0, reads = 0;
  for (int round = 0; round < a.rounds; ++round) {
    const std::string old_value = "v" + std::to_string(round);
    const std::string new_value = "v" + std::to_string(round + 1);
    if (round == 0) (void)writer->set("k", old_value, Expiry::never());
    // The reader holds the current value locally (its own fill may be dropped once by the
    // write's invalidation arriving late, so read until it is a local hit).
    for (auto hits = std::atoll(stat(*reader, "local_hits").c_str());;) {
      (void)reader->get("k");
      auto now_hits = std::atoll(stat(*reader, "local_hits").c_str());
      if (now_hits > hits) break;
      hits = now_hits;
    }
    if (!writer->set("k", new_value, Expiry::never()).ok()) die("set failed");
    const auto returned = Steady::now();
    for (;;) {
      auto v = reader->get("k");
      ++reads;
      const auto now = Steady::now();
      if (v.ok() && v->has_value() && (*v)->view() == new_value) {
        seen_ms.push_back(std::chrono::duration<double, std::milli>(now - returned).count());
        break;
      }
      if (now - returned > bound) ++stale_after_bound;
      if (now - returned > std::chrono::seconds(5)) die("the reader never saw the write");
    }
  }
  std::sort(seen_ms.begin(), seen_ms.end());
  auto at = [&](double q) {
    return seen_ms[std::min(seen_ms.size() - 1, static_cast<std::size_t>(q * seen_ms.size()))];
  };
  std::printf(
      "rounds=%d p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f "
      "stale_reads_after_%.0fms=%lld reads=%lld\n",
      a.rounds, at(0.5), at(0.9), at(0.99), at(0.999), seen_ms.back(), a.bound_ms,
      stale_after_bound, reads);
  (void)writer->clear();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  if (a.mode == "zipf") return run_zipf(a);
  if (a.mode == "invalidation") return run_invalidation(a);
  die("--mode is zipf or invalidation");
}
