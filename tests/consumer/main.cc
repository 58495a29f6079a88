// Uses an installed cachekit: a locmem cache, a typed value, incr, and a cache from config.
#include <cachekit/backends/locmem.h>
#include <cachekit/cache.h>
#include <cachekit/caches.h>

#include <cstdio>

int main() {
  cachekit::Cache cache(cachekit::make_locmem_backend());
  cache.set("greeting", "hello");
  cache.set("n", 41);
  auto greeting = cache.get("greeting");
  auto n = cache.incr("n");
  auto caches = cachekit::Caches::from_url("locmem://consumer");
  caches.default_cache().set("k", "v");
  bool ok = greeting && greeting->view() == "hello" && n.ok() && *n == 42 &&
            caches.default_cache().get("k").has_value();
  std::puts(ok ? "consumer: ok" : "consumer: FAILED");
  return ok ? 0 : 1;
}
