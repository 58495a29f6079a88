// cache_page and cache_middleware as an application uses them, and failing open when the
// store is down.

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/http/cache_control.h"
#include "cachekit/http/page_cache.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::BackendWrapper;
using testing::ClockedCache;
using testing::get;
using testing::make_request;

// Runs `request` through `middleware` in front of `inner`.
Response through(const Middleware& middleware, const Next& inner, Request request) {
  return middleware(request, inner);
}

TEST(CachePage, WrapsAHandlerWithItsTimeout) {
  ClockedCache store;
  int calls = 0;
  CachedHandler cached = cache_page(
      seconds(5), [&calls](Request&) { return Response::text("page " + std::to_string(++calls)); },
      {.cache = store.cache.get(), .key_prefix = "hello"});
  Request r = get("/playground/hello/");
  Response first = cached(r);
  EXPECT_EQ(first.headers.get("Cache-Status"), "cachekit; fwd=uri-miss; stored; ttl=5");
  EXPECT_EQ(cached(r).body, "page 1");
  EXPECT_EQ(cached.page_cache->options().page_timeout, seconds(5));
  EXPECT_TRUE(cached.page_cache->fetch(r).has_value());  // what a server does on its io thread
  // The Django key, under the façade's own prefix and version.
  auto key = get_cache_key(r, *store.cache, {.key_prefix = "hello"});
  ASSERT_TRUE(key);
  EXPECT_TRUE(key->starts_with("views.decorators.cache.cache_page.hello.GET."));
  EXPECT_TRUE(store.cache->contains(*key));
  EXPECT_THROW((void)cache_page(seconds(5), cached.handler, {}), std::invalid_argument);
}

TEST(CacheMiddleware, FirstInTheChainSeesVaryAddedByInnerMiddleware) {
  ClockedCache store;
  Middleware cache = cache_middleware({.cache = store.cache.get(), .clock = &store.clock});
  int views = 0;
  Handler view = [&views](Request& r) {
    ++views;
    return Response::text("hello " + r.cookie("user").value_or("anonymous"));
  };
  // An inner "session" middleware: the response depends on the cookie, and says so.
  Next session = [&view](Request& r) {
    Response res = view(r);
    patch_vary_headers(res, {"Cookie"});
    return res;
  };
  EXPECT_EQ(through(cache, session, get("/", {{"Cookie", "user=ann"}})).body, "hello ann");
  EXPECT_EQ(through(cache, session, get("/", {{"Cookie", "user=bob"}})).body, "hello bob");
  Response ann = through(cache, session, get("/", {{"Cookie", "user=ann"}}));
  EXPECT_EQ(ann.body, "hello ann");
  EXPECT_EQ(ann.headers.get("Cache-Status"), "cachekit; hit; ttl=600");
  EXPECT_EQ(views, 2);  // the hit short-circuited the inner chain
}

TEST(CacheMiddleware, DefaultTimeoutAndPrefix) {
  ClockedCache store;
  Middleware cache = cache_middleware({.cache = store.cache.get(),
                                       .key_prefix = "mw",
                                       .default_timeout = seconds(42),
                                       .clock = &store.clock});
  Next next = [](Request&) { return Response::text("x"); };
  Response r = through(cache, next, get("/"));
  EXPECT_EQ(r.headers.get("Cache-Status"), "cachekit; fwd=uri-miss; stored; ttl=42");
  EXPECT_EQ(r.headers.get("Cache-Control"), "max-age=42");
  EXPECT_TRUE(get_cache_key(get("/"), *store.cache, {.key_prefix = "mw"}).has_value());
  EXPECT_THROW((void)cache_middleware({}), std::invalid_argument);
}

TEST(CacheMiddleware, NeverCacheViewIsNotStored) {
  ClockedCache store;
  Middleware cache = cache_middleware({.cache = store.cache.get(), .clock = &store.clock});
  int views = 0;
  Next next = never_cache([&views](Request&) { return Response::text(std::to_string(++views)); });
  EXPECT_EQ(through(cache, next, get("/")).body, "1");
  EXPECT_EQ(through(cache, next, get("/")).body, "2");
}

// The site-wide middleware over a locmem store whose calls the test can fail one by one.
struct FaultySite {
  std::shared_ptr<BackendWrapper> store = std::make_shared<BackendWrapper>(make_locmem_backend());
  Cache cache{store, CacheOptions{.max_error_logs_per_second = 0}};
  Middleware middleware = cache_middleware({.cache = &cache});
  int views = 0;
  Next view = [this](Request&) {
    ++views;
    return Response::html("<p>page</p>", 200);
  };
  // A miss that stores, then a hit: the two requests a clean cache serves.
  std::vector<Response> two_requests() {
    return {through(middleware, view, get("/p/")), through(middleware, view, get("/p/"))};
  }
};

// Fault matrix: fail the Nth store call, for every N a clean miss-then-hit makes; each request
// still answers 200 with the page.
TEST(FailOpen, EveryRequestAnswersThePageWhicheverStoreCallFails) {
  FaultySite clean;
  for (const Response& res : clean.two_requests()) ASSERT_EQ(res.body, "<p>page</p>");
  const int calls = clean.store->calls(testing::Op::kAny);
  ASSERT_GT(calls, 2) << "a miss reads and stores, a hit reads";
  for (int n = 1; n <= calls; ++n) {
    FaultySite site;
    site.store->fail_calls(testing::Op::kAny, n);
    for (const Response& res : site.two_requests()) {
      EXPECT_EQ(res.status, 200) << "failing store call " << n;
      EXPECT_EQ(res.body, "<p>page</p>") << "failing store call " << n;
    }
    EXPECT_GE(site.views, 1) << "failing store call " << n;
  }
}

TEST(FailOpen, StoreDownReturnsTheHandlersResponseUnchanged) {
  auto failing = std::make_shared<BackendWrapper>(
      make_locmem_backend(), testing::BackendWrapperOptions{.name = "failing", .hide_keys = true});
  failing->set_down(true);
  CacheOptions quiet;
  quiet.max_error_logs_per_second = 0;
  Cache cache(failing, quiet);
  PageCache page({.cache = &cache});
  int calls = 0;
  Handler h = [&calls](Request&) {
    ++calls;
    Response r = Response::html("<p>still up</p>", 200);
    r.headers.set("X-App", "1");
    return r;
  };
  for (int i = 0; i < 3; ++i) {
    Request r = get("/p/");
    Response res = page.serve(r, h);
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "<p>still up</p>");
    EXPECT_EQ(res.headers.get("X-App"), "1");
    EXPECT_EQ(res.headers.get("Cache-Status"), "cachekit; fwd=uri-miss");  // not "stored"
  }
  EXPECT_EQ(calls, 3);
  EXPECT_GT(failing->calls(testing::Op::kAny), 0);
  Request r = get("/p/");
  EXPECT_EQ(page.fetch(r), std::nullopt);
  Response manual = Response::text("m", 404);
  page.update(r, manual);
  EXPECT_EQ(manual.status, 404);
  EXPECT_FALSE(page.invalidate("http://www.example.com/p/"));
  EXPECT_EQ(page.invalidate_all(), 0u);
  Request post = make_request("POST", "/p/");
  EXPECT_EQ(page.serve(post, h).status, 200);
  EXPECT_TRUE(page.fetch_is_local());  // the failing store claims to be in-process
}

TEST(FailOpen, HandlerExceptionsPropagate) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  Request r = get("/p/");
  EXPECT_THROW(page.serve(r, [](Request&) -> Response { throw std::runtime_error("view bug"); }),
               std::runtime_error);
  // The page is still servable afterwards (no flight left behind).
  EXPECT_EQ(page.serve(r, [](Request&) { return Response::text("ok"); }).body, "ok");
}

}  // namespace
}  // namespace cachekit::http
