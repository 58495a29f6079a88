// The lesson in one program: wrap a slow function in a cache and watch what changes.
//
// A "third-party API" that takes 800 ms is called through cache.get_or_set. The first call
// pays the full price; later calls are answered from the in-memory cache in microseconds;
// after the timeout the value expires and the next call is slow again. Counters use incr.

#include <cachekit/backends/locmem.h>
#include <cachekit/cache.h>
#include <fmt/core.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int upstream_calls = 0;

// Stands in for a slow query or a slow third-party API.
std::string slow_weather_report(const std::string& city) {
  ++upstream_calls;
  std::this_thread::sleep_for(800ms);
  return "{\"city\": \"" + city + "\", \"forecast\": \"sunny\", \"celsius\": 21}";
}

template <class F>
void timed(const char* label, F&& f) {
  auto start = Clock::now();
  std::string result = f();
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  fmt::print("  {:<38} {:>10.3f} ms   {}\n", label, ms, result);
}

}  // namespace

int main() {
  cachekit::Cache cache(cachekit::make_locmem_backend({.max_entries = 1000}),
                        {.default_timeout = 2s});

  fmt::print("1. get_or_set: the slow function runs only on a miss (timeout 2 s)\n");
  auto report = [&] {
    return cache.get_or_set("weather:lisbon", [] { return slow_weather_report("Lisbon"); }).str();
  };
  timed("first call (miss: calls upstream)", report);
  timed("second call (hit)", report);
  timed("third call (hit)", report);

  fmt::print("\n2. expiry: wait 2.1 s, the entry is gone, the next call is slow again\n");
  std::this_thread::sleep_for(2100ms);
  timed("after expiry (miss)", report);
  timed("again (hit)", report);

  fmt::print("\n3. set/get with an explicit timeout, and never\n");
  cache.set("banner", "Free shipping today", 60);
  cache.set("site-name", "cachekit storefront", cachekit::kNever);
  fmt::print(
      "  banner = '{}', ttl {} s; site-name never expires: {}\n", cache.get("banner")->view(),
      std::chrono::duration_cast<std::chrono::seconds>(cache.ttl("banner").remaining()).count(),
      cache.ttl("site-name").is_never());

  fmt::print("\n4. incr: atomic counters stored as decimal text\n");
  cache.set("page-views", 0, cachekit::kNever);
  for (int i = 0; i < 5; ++i) (void)cache.incr("page-views");
  fmt::print("  page-views after 5 incr: {}\n", *cache.incr("page-views", 0));
  auto missing = cache.incr("no-such-counter");
  fmt::print("  incr on a missing key: {}\n", missing.status().to_string());

  auto stats = cache.stats();
  fmt::print("\nupstream called {} times; cache hits {}, misses {}, writes {}\n", upstream_calls,
             stats.hits, stats.misses, stats.writes);
  return upstream_calls == 2 ? 0 : 1;
}
