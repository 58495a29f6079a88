// Deliberate expiry: one URI (every method and Vary variant, with and without a backend that
// lists keys), unsafe methods, and invalidate_all.

#include <gtest/gtest.h>

#include "cachekit/backends/locmem.h"
#include "cachekit/http/cache_control.h"
#include "cachekit/http/page_cache.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::ClockedCache;
using testing::get;
using testing::make_request;

constexpr const char* kUri = "http://www.example.com/p/";

// Counts handler calls per path; the body says which call produced it.
struct Site {
  explicit Site(bool hide_keys = false, std::string prefix = "")
      : store(hide_keys),
        page(PageCacheOptions{
            .cache = store.cache.get(), .key_prefix = std::move(prefix), .clock = &store.clock}) {}
  Response serve(Request r) {
    return page.serve(r, [this](Request& req) {
      Response res = Response::text("v" + std::to_string(++calls) + " " + req.path);
      patch_vary_headers(res, {"Accept-Language"});
      return res;
    });
  }
  Response serve_lang(const std::string& target, const std::string& lang) {
    return serve(get(target, {{"Accept-Language", lang}}));
  }
  ClockedCache store;
  PageCache page;
  int calls = 0;
};

class InvalidateAnyStore : public ::testing::TestWithParam<bool> {};

TEST_P(InvalidateAnyStore, RemovesEveryVariantAndNoneComesBack) {
  Site site(/*hide_keys=*/GetParam());
  site.serve_lang("/p/", "en");
  site.serve_lang("/p/", "fr");
  site.serve(make_request("HEAD", "/p/", {{"Accept-Language", "de"}}));
  EXPECT_EQ(site.serve_lang("/p/", "fr").body, "v2 /p/");  // a hit
  ASSERT_EQ(site.calls, 3);

  EXPECT_TRUE(site.page.invalidate(kUri));
  // The first request after invalidation re-learns the header list; the old fr page must
  // not become reachable again through it (with or without key listing).
  EXPECT_EQ(site.serve_lang("/p/", "en").body, "v4 /p/");
  EXPECT_EQ(site.serve_lang("/p/", "fr").body, "v5 /p/");
  Response head = site.serve(make_request("HEAD", "/p/", {{"Accept-Language", "de"}}));
  EXPECT_EQ(head.headers.get("Cache-Status"), "cachekit; fwd=miss; stored; ttl=600");
  EXPECT_EQ(site.calls, 6);
  EXPECT_EQ(site.serve_lang("/p/", "fr").body, "v5 /p/");
  EXPECT_FALSE(site.page.invalidate("http://www.example.com/never-stored/"));
}

TEST_P(InvalidateAnyStore, SuccessfulUnsafeMethodsInvalidateTheirUri) {
  Site site(GetParam());
  site.serve_lang("/p/", "en");
  Request create = make_request("POST", "/p/");
  Response post = site.page.serve(create, [](Request&) { return Response::text("created", 201); });
  EXPECT_EQ(post.headers.get("Cache-Status"), "cachekit; fwd=method; detail=invalidated");
  EXPECT_EQ(site.serve_lang("/p/", "en").body, "v2 /p/");  // regenerated

  for (const char* method : {"PUT", "PATCH", "DELETE"}) {
    Request r = make_request(method, "/p/");
    Response res = site.page.serve(r, [](Request&) { return Response::text("done", 200); });
    EXPECT_EQ(res.headers.get("Cache-Status"), "cachekit; fwd=method; detail=invalidated")
        << method;
    site.serve_lang("/p/", "en");
  }
  EXPECT_EQ(site.calls, 5);
}

TEST_P(InvalidateAnyStore, FailedUnsafeRequestsAndOtherUrisLeavePagesAlone) {
  Site site(GetParam());
  site.serve_lang("/p/", "en");
  site.serve_lang("/q/", "en");
  Request bad = make_request("POST", "/p/");
  Response res = site.page.serve(bad, [](Request&) { return Response::text("no", 400); });
  EXPECT_EQ(res.headers.get("Cache-Status"), "cachekit; fwd=method");
  Request other = make_request("POST", "/q/");
  (void)site.page.serve(other, [](Request&) { return Response::text("ok", 200); });
  EXPECT_EQ(site.serve_lang("/p/", "en").body, "v1 /p/");
  EXPECT_EQ(site.serve_lang("/q/", "en").body, "v3 /q/");
}

INSTANTIATE_TEST_SUITE_P(KeysListed, InvalidateAnyStore, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "NoKeys" : "Locmem"; });

// An unsafe request anyone can send must cost O(1) store calls: listing keys is a full SCAN
// on Redis and a read of every file on the file backend. Dropping the header list is enough to
// make every old variant unreachable (the next store mints a new epoch).
TEST(Invalidate, UnsafeMethodInvalidatesWithoutListingTheStore) {
  ManualClock clock;
  auto counting = std::make_shared<testing::BackendWrapper>(
      make_locmem_backend(LocmemOptions{.max_entries = 1000, .clock = &clock}));
  Cache cache(counting, CacheOptions{.clock = &clock});
  PageCache page({.cache = &cache, .clock = &clock});
  int calls = 0;
  Handler h = [&calls](Request& r) {
    Response res = Response::text("v" + std::to_string(++calls) + " " +
                                  std::string(r.headers.get("Accept-Language").value_or("")));
    patch_vary_headers(res, {"Accept-Language"});
    return res;
  };
  for (const char* lang : {"en", "fr", "de"}) {
    Request r = get("/p/", {{"Accept-Language", lang}});
    page.serve(r, h);
  }
  ASSERT_EQ(calls, 3);

  for (const char* method : {"POST", "PUT", "PATCH", "DELETE"}) {
    Request write = make_request(method, "/p/");
    Response res = page.serve(write, [](Request&) { return Response::text("done"); });
    EXPECT_EQ(res.headers.get("Cache-Status"), "cachekit; fwd=method; detail=invalidated")
        << method;
    for (const char* lang : {"en", "fr", "de"}) {
      Request r = get("/p/", {{"Accept-Language", lang}});
      EXPECT_EQ(page.fetch(r), std::nullopt) << method << " " << lang;
    }
    Request again = get("/p/", {{"Accept-Language", "en"}});
    page.serve(again, h);  // re-learns the header list; fr and de must stay unreachable
    Request fr = get("/p/", {{"Accept-Language", "fr"}});
    EXPECT_EQ(page.fetch(fr), std::nullopt) << method;
  }
  EXPECT_EQ(counting->calls(testing::Op::kKeys), 0) << "a write listed the store";
}

TEST(Invalidate, HostIsMatchedCaseInsensitively) {
  Site site;
  site.serve_lang("/p/", "en");
  EXPECT_TRUE(site.page.invalidate("http://WWW.Example.COM/p/"));
  EXPECT_EQ(site.serve_lang("/p/", "en").body, "v2 /p/");
  EXPECT_FALSE(site.page.invalidate("http://www.example.com/P/"));  // paths are case-sensitive
}

TEST(InvalidateAll, RemovesThisPrefixsPagesOnly) {
  ClockedCache store;
  PageCache mine({.cache = store.cache.get(), .key_prefix = "site", .clock = &store.clock});
  PageCache theirs({.cache = store.cache.get(), .key_prefix = "site.other", .clock = &store.clock});
  int calls = 0;
  Handler h = [&calls](Request&) { return Response::text(std::to_string(++calls)); };
  for (const char* path : {"/a/", "/b/", "/c/?x=1"}) {
    Request r = get(path);
    mine.serve(r, h);
  }
  Request theirs_request = get("/a/");
  theirs.serve(theirs_request, h);
  ASSERT_EQ(calls, 4);

  EXPECT_EQ(mine.invalidate_all(), 3u);
  for (const char* path : {"/a/", "/b/", "/c/?x=1"}) {
    Request r = get(path);
    EXPECT_EQ(mine.fetch(r), std::nullopt) << path;
  }
  EXPECT_TRUE(theirs.fetch(theirs_request).has_value());  // "site.other" looks like "site."
  EXPECT_EQ(mine.invalidate_all(), 0u);
}

TEST(InvalidateAll, WithoutKeyListingRemovesNothingAndSaysSo) {
  ClockedCache store(/*hide_keys=*/true);
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  Request r = get("/a/");
  page.serve(r, [](Request&) { return Response::text("x"); });
  EXPECT_EQ(page.invalidate_all(), 0u);
  EXPECT_TRUE(page.fetch(r).has_value());
  EXPECT_FALSE(page.invalidate(kUri + std::string("../a/")));
  EXPECT_TRUE(page.invalidate("http://www.example.com/a/"));
  EXPECT_EQ(page.fetch(r), std::nullopt);
}

}  // namespace
}  // namespace cachekit::http
