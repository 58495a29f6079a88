// The page cache's hit path against its floor, on the in-process store:
//   CacheGet          Cache::get of a value the size of the stored page (what any hit costs)
//   PageCacheFetchHit PageCache::fetch of that page: key (2 × MD5), header list (JSON), page
//                     decode, Age/Cache-Status — the body is a view, never copied
//   BodyCopy          copying the body once, what a hit that copied would add at least
//   PageCacheStore    the miss path's store: rules, patching, header list, one body copy
// Sizes 1 KiB .. 1 MiB show whether the hit cost grows with the body (it should not).

#include <benchmark/benchmark.h>

#include <string>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/cache_key.h"
#include "cachekit/http/page_cache.h"

namespace {

using namespace cachekit;
using namespace cachekit::http;

Request page_request(const std::string& path) {
  Request r;
  r.path = path;
  r.headers.add("Host", "www.example.com");
  r.headers.add("Accept-Language", "en");
  return r;
}

struct Fixture {
  explicit Fixture(std::size_t body_size) : body(body_size, 'x') {
    LocmemOptions o;
    o.max_entries = 100000;
    cache = std::make_unique<Cache>(make_locmem_backend(o));
    pages = std::make_unique<PageCache>(PageCacheOptions{.cache = cache.get()});
    Request r = page_request("/page/");
    pages->serve(r, [this](Request&) {
      Response res = Response::html(body);
      res.headers.set("Vary", "Accept-Language");
      return res;
    });
    key = *get_cache_key(r, *cache);
  }
  std::string body;
  std::unique_ptr<Cache> cache;
  std::unique_ptr<PageCache> pages;
  std::string key;
};

void CacheGet(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(f.cache->get(f.key));
}

void PageCacheFetchHit(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  Request r = page_request("/page/");
  for (auto _ : state) {
    auto hit = f.pages->fetch(r);
    if (!hit) state.SkipWithError("expected a hit");
    benchmark::DoNotOptimize(hit);
  }
}

void BodyCopy(benchmark::State& state) {
  std::string body(static_cast<std::size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Bytes(body));
}

void PageCacheStore(benchmark::State& state) {
  Fixture f(static_cast<std::size_t>(state.range(0)));
  Request r = page_request("/page/");
  for (auto _ : state) {
    Response res = Response::html(f.body);
    res.headers.set("Vary", "Accept-Language");
    f.pages->update(r, res);
    benchmark::DoNotOptimize(res);
  }
}

BENCHMARK(CacheGet)->RangeMultiplier(8)->Range(1 << 10, 1 << 20);
BENCHMARK(PageCacheFetchHit)->RangeMultiplier(8)->Range(1 << 10, 1 << 20);
BENCHMARK(BodyCopy)->RangeMultiplier(8)->Range(1 << 10, 1 << 20);
BENCHMARK(PageCacheStore)->RangeMultiplier(8)->Range(1 << 10, 1 << 20);

}  // namespace

BENCHMARK_MAIN();
