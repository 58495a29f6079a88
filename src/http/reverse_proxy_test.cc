// PageCache in reverse-proxy mode (PageCacheOptions::reverse_proxy): the origin's headers
// rule — no patching, heuristic freshness, Age from the origin's Date, revalidation with
// If-None-Match / If-Modified-Since and 304 freshening, HEAD forwarded as GET, the client's
// preconditions answered by the cache, the size limit.

#include <gtest/gtest.h>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/page_cache.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::ClockedCache;
using testing::get;
using testing::make_request;

// An origin: answers `next` (a copy), records each request it saw.
struct Origin {
  Response next = Response::text("origin body");
  std::vector<Request> seen;
  Handler handler() {
    return [this](Request& r) {
      seen.push_back(r);
      return next;
    };
  }
};

class ReverseProxyTest : public ::testing::Test {
 protected:
  PageCache& page(PageCacheOptions o = {}) {
    o.cache = c_.cache.get();
    o.clock = &c_.clock;
    o.reverse_proxy = true;
    o.default_timeout = seconds(0);
    pc_ = std::make_unique<PageCache>(std::move(o));
    return *pc_;
  }
  Response serve(Request r) { return pc_->serve(r, origin_.handler()); }
  Response serve(const std::string& target,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
    return serve(get(target, std::move(headers)));
  }
  std::string date(seconds ago) { return format_http_date(c_.clock.now() - ago); }
  std::string status_of(const Response& r) {
    return std::string(r.headers.get("Cache-Status").value_or(""));
  }

  ClockedCache c_;
  Origin origin_;
  std::unique_ptr<PageCache> pc_;
};

TEST_F(ReverseProxyTest, StoresTheOriginsResponseWithoutAddingValidatorsOrFreshness) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=60");
  Response first = serve("/a");
  EXPECT_EQ(status_of(first), "cachekit; fwd=uri-miss; stored; ttl=60");
  Response hit = serve("/a");
  EXPECT_EQ(origin_.seen.size(), 1U);
  EXPECT_EQ(hit.headers.get("Cache-Control"), "max-age=60");
  EXPECT_FALSE(hit.headers.contains("ETag"));     // Django mode adds one
  EXPECT_FALSE(hit.headers.contains("Expires"));  // ...and Expires
  EXPECT_TRUE(hit.headers.contains("Date"));
}

TEST_F(ReverseProxyTest, ResponsesWithoutFreshnessOrLastModifiedAreNotStored) {
  page();
  EXPECT_EQ(status_of(serve("/a")), "cachekit; fwd=uri-miss; detail=no-freshness");
  serve("/a");
  EXPECT_EQ(origin_.seen.size(), 2U);
}

TEST_F(ReverseProxyTest, LastModifiedGivesATenthOfItsAgeAsHeuristicFreshness) {
  page();
  origin_.next.headers.set("Date", date(seconds(0)));
  origin_.next.headers.set("Last-Modified", date(seconds(1000)));
  EXPECT_EQ(status_of(serve("/a")), "cachekit; fwd=uri-miss; stored; ttl=100");
  c_.clock.advance(seconds(99));
  EXPECT_EQ(status_of(serve("/a")), "cachekit; hit; ttl=1");
}

TEST_F(ReverseProxyTest, TheOriginsDateCountsAsAgeAlready) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=3600");
  origin_.next.headers.set("Date", date(seconds(600)));  // generated ten minutes ago
  EXPECT_EQ(status_of(serve("/a")), "cachekit; fwd=uri-miss; stored; ttl=3000");
  Response hit = serve("/a");
  EXPECT_EQ(hit.headers.get("Age"), "600");
}

TEST_F(ReverseProxyTest, ALargerAgeFromTheOriginWinsOverItsDate) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=3600");
  origin_.next.headers.set("Date", date(seconds(0)));
  origin_.next.headers.set("Age", "1800");
  EXPECT_EQ(status_of(serve("/a")), "cachekit; fwd=uri-miss; stored; ttl=1800");
  EXPECT_EQ(serve("/a").headers.get("Age"), "1800");
}

TEST_F(ReverseProxyTest, AnExpiredEntryIsRevalidatedAndA304FreshensIt) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=10");
  origin_.next.headers.set("ETag", "\"v1\"");
  origin_.next.headers.set("X-Version", "1");
  serve("/a");
  c_.clock.advance(seconds(11));

  origin_.next = Response{};
  origin_.next.status = 304;
  origin_.next.headers.set("Cache-Control", "max-age=100");
  origin_.next.headers.set("ETag", "\"v1\"");
  origin_.next.headers.set("X-Version", "2");
  Response refreshed = serve("/a");
  ASSERT_EQ(origin_.seen.size(), 2U);
  EXPECT_EQ(origin_.seen[1].headers.get("If-None-Match"), "\"v1\"");
  EXPECT_EQ(refreshed.status, 200);
  EXPECT_EQ(refreshed.body, "origin body");  // the stored body, not sent again
  EXPECT_EQ(refreshed.headers.get("X-Version"), "2");
  EXPECT_EQ(refreshed.headers.get("Cache-Control"), "max-age=100");
  EXPECT_EQ(pc_->stats().revalidated, 1U);

  Response hit = serve("/a");
  EXPECT_EQ(origin_.seen.size(), 2U);
  EXPECT_EQ(status_of(hit), "cachekit; hit; ttl=100");
  EXPECT_EQ(hit.headers.get("X-Version"), "2");
}

TEST_F(ReverseProxyTest, ANoCacheResponseWithAValidatorIsRevalidatedOnEveryRequest) {
  page();
  origin_.next.headers.set("Cache-Control", "no-cache");
  origin_.next.headers.set("Last-Modified", date(seconds(3600)));
  serve("/a");
  origin_.next = Response{};
  origin_.next.status = 304;
  for (int i = 0; i < 2; ++i) {
    Response r = serve("/a");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "origin body");
  }
  ASSERT_EQ(origin_.seen.size(), 3U);
  EXPECT_TRUE(origin_.seen[1].headers.contains("If-Modified-Since"));
  EXPECT_TRUE(origin_.seen[2].headers.contains("If-Modified-Since"));
  EXPECT_EQ(pc_->stats().revalidated, 2U);
}

TEST_F(ReverseProxyTest, AChangedRepresentationReplacesTheStaleOne) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=10");
  origin_.next.headers.set("ETag", "\"v1\"");
  serve("/a");
  c_.clock.advance(seconds(11));
  origin_.next = Response::text("new body");
  origin_.next.headers.set("Cache-Control", "max-age=10");
  origin_.next.headers.set("ETag", "\"v2\"");
  EXPECT_EQ(serve("/a").body, "new body");
  EXPECT_EQ(serve("/a").body, "new body");
  EXPECT_EQ(origin_.seen.size(), 2U);
}

TEST_F(ReverseProxyTest, TheClientsPreconditionsAreAnsweredHereNotForwarded) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=60");
  origin_.next.headers.set("ETag", "\"v1\"");
  Response miss = serve("/a", {{"If-None-Match", "\"v1\""}});
  ASSERT_EQ(origin_.seen.size(), 1U);
  EXPECT_FALSE(origin_.seen[0].headers.contains("If-None-Match"));  // a full answer to store
  EXPECT_EQ(miss.status, 304);
  EXPECT_EQ(serve("/a", {{"If-None-Match", "\"v1\""}}).status, 304);  // the hit too
  EXPECT_EQ(serve("/a").status, 200);
  EXPECT_EQ(origin_.seen.size(), 1U);
}

TEST_F(ReverseProxyTest, HeadGoesForwardAsGetAndFillsTheGetPage) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=60");
  Response head = serve(make_request("HEAD", "/a"));
  ASSERT_EQ(origin_.seen.size(), 1U);
  EXPECT_EQ(origin_.seen[0].method, "GET");
  EXPECT_EQ(head.status, 200);
  Response hit = serve("/a");
  EXPECT_EQ(origin_.seen.size(), 1U);
  EXPECT_EQ(hit.body, "origin body");
}

TEST_F(ReverseProxyTest, ABodyOverTheSizeLimitGoesThroughWithoutBeingStored) {
  page({.max_body_bytes = 4});
  origin_.next.headers.set("Cache-Control", "max-age=60");
  Response r = serve("/a");
  EXPECT_EQ(r.body, "origin body");
  EXPECT_EQ(status_of(r), "cachekit; fwd=uri-miss; detail=size");
  serve("/a");
  EXPECT_EQ(origin_.seen.size(), 2U);
}

TEST_F(ReverseProxyTest, ARangeRequestGoesForwardWithItsPreconditions) {
  page();
  origin_.next.status = 206;
  serve("/a", {{"Range", "bytes=0-1"}, {"If-Range", "\"v1\""}});
  ASSERT_EQ(origin_.seen.size(), 1U);
  EXPECT_EQ(origin_.seen[0].headers.get("If-Range"), "\"v1\"");
}

TEST_F(ReverseProxyTest, AnInvalidAgeMakesTheResponseStale) {
  page();
  for (const char* age : {"abc", "-7200", "7200.0", "7200,0", "0, 0", "7200;foo=bar"}) {
    origin_.next = Response::text("x");
    origin_.next.headers.set("Cache-Control", "max-age=3600");
    origin_.next.headers.set("Age", age);
    const std::string target = std::string("/age/") + age;
    EXPECT_EQ(status_of(serve(target)), "cachekit; fwd=uri-miss; detail=zero-lifetime") << age;
  }
  origin_.next.headers.set("Age", "10");
  origin_.next.headers.add("Age", "10");  // two fields: a list too
  EXPECT_EQ(status_of(serve("/age/two")), "cachekit; fwd=uri-miss; detail=zero-lifetime");
}

TEST_F(ReverseProxyTest, SurrogateControlAimedAtThisCacheWinsOverCacheControl) {
  page();
  auto with = [&](std::string cc, std::string sc) {
    origin_.next = Response::text("x");
    if (!cc.empty()) origin_.next.headers.set("Cache-Control", std::move(cc));
    origin_.next.headers.set("Surrogate-Control", std::move(sc));
  };
  with("no-store", "max-age=100;cachekit");
  EXPECT_EQ(status_of(serve("/s/1")), "cachekit; fwd=uri-miss; stored; ttl=100");
  with("max-age=100", "no-store");
  EXPECT_EQ(status_of(serve("/s/2")), "cachekit; fwd=uri-miss; detail=no-store");
  with("", "max-age=100;another-cache");  // not for us: no freshness
  EXPECT_EQ(status_of(serve("/s/3")), "cachekit; fwd=uri-miss; detail=no-freshness");
  with("max-age=1", "MaX-aGe=50, foo");
  EXPECT_EQ(status_of(serve("/s/4")), "cachekit; fwd=uri-miss; stored; ttl=50");
  with("max-age=1", "max-age =50");  // malformed: Cache-Control rules
  EXPECT_EQ(status_of(serve("/s/5")), "cachekit; fwd=uri-miss; stored; ttl=1");
}

TEST_F(ReverseProxyTest, AStoredPageAnswersASingleByteRange) {
  page();
  origin_.next = Response::text("0123456789");
  origin_.next.headers.set("Cache-Control", "max-age=60");
  origin_.next.headers.set("ETag", "\"v1\"");
  serve("/r");
  Response part = serve("/r", {{"Range", "bytes=2-4"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "234");
  EXPECT_EQ(part.headers.get("Content-Range"), "bytes 2-4/10");
  EXPECT_EQ(serve("/r", {{"Range", "bytes=7-"}}).body, "789");
  EXPECT_EQ(serve("/r", {{"Range", "bytes=-2"}}).body, "89");
  Response past = serve("/r", {{"Range", "bytes=20-"}});
  EXPECT_EQ(past.status, 416);
  EXPECT_EQ(past.headers.get("Content-Range"), "bytes */10");
  // Another representation's If-Range, or several ranges: the whole page.
  EXPECT_EQ(serve("/r", {{"Range", "bytes=0-1"}, {"If-Range", "\"v0\""}}).status, 200);
  EXPECT_EQ(serve("/r", {{"Range", "bytes=0-1,3-4"}}).status, 200);
  EXPECT_EQ(origin_.seen.size(), 1U);
}

TEST_F(ReverseProxyTest, AServerErrorIsStoredOnlyWithExplicitFreshnessAndAKnownCode) {
  page();
  origin_.next = Response::text("down", 503);
  EXPECT_EQ(status_of(serve("/e/1")), "cachekit; fwd=uri-miss; detail=status");
  origin_.next.headers.set("Cache-Control", "max-age=30");
  EXPECT_EQ(status_of(serve("/e/2")), "cachekit; fwd=uri-miss; stored; ttl=30");
  origin_.next.status = 599;
  EXPECT_EQ(status_of(serve("/e/3")), "cachekit; fwd=uri-miss; detail=status");
}

TEST_F(ReverseProxyTest, AnUnsafeMethodInvalidatesTheLocationsItNamesOnTheSameOrigin) {
  page();
  origin_.next.headers.set("Cache-Control", "max-age=60");
  for (const char* path : {"/a", "/b", "/dir/c", "/d"}) serve(path);
  Response posted = Response::text("ok", 201);
  posted.headers.set("Location", "/b");
  posted.headers.set("Content-Location", "c");  // relative to /dir/
  origin_.next = posted;
  serve(make_request("M-SEARCH", "/dir/x"));  // an extension method is unsafe too
  posted.headers.set("Location", "http://elsewhere.example/d");  // another origin: untouched
  posted.headers.erase("Content-Location");
  origin_.next = posted;
  serve(make_request("POST", "/a"));
  origin_.next = Response::text("new");
  origin_.next.headers.set("Cache-Control", "max-age=60");
  EXPECT_EQ(serve("/a").body, "new");
  EXPECT_EQ(serve("/b").body, "new");
  EXPECT_EQ(serve("/dir/c").body, "new");
  EXPECT_EQ(serve("/d").body, "origin body");
}

}  // namespace
}  // namespace cachekit::http
