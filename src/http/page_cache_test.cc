// PageCache end to end on a locmem store with a ManualClock: hits and misses with their
// Cache-Status, Age, 304s, HEAD from GET, Vary, Authorization, invalidation, fail-open,
// corrupt entries and zero-copy hits. The middleware form is in middleware_test.cc,
// coalescing in coalescing_test.cc.

#include "cachekit/http/page_cache.h"

#include <gtest/gtest.h>

#include "cachekit/http/cache_control.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::ClockedCache;
using testing::get;
using testing::make_request;

// A handler that counts its calls and answers `make(request)`.
struct CountingHandler {
  std::function<Response(Request&)> make = [](Request&) { return Response::text("hello"); };
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  Handler handler() {
    return [m = make, c = calls](Request& r) {
      ++*c;
      return m(r);
    };
  }
  int count() const { return calls->load(); }
};

class PageCacheTest : public ::testing::Test {
 protected:
  PageCache& page(PageCacheOptions o = {}) {
    o.cache = c_.cache.get();
    o.clock = &c_.clock;
    pc_ = std::make_unique<PageCache>(std::move(o));
    return *pc_;
  }
  Response serve(Request r) { return pc_->serve(r, h_.handler()); }
  Response serve(const std::string& target,
                 std::vector<std::pair<std::string, std::string>> headers = {}) {
    return serve(get(target, std::move(headers)));
  }
  // The Cache-Status header, after checking that the value handed on the response
  // (Response::cache_status) is the one the header's last member was rendered from.
  std::string status_of(const Response& r) {
    std::string header(r.headers.get("Cache-Status").value_or(""));
    EXPECT_TRUE(r.cache_status.has_value()) << header;
    if (r.cache_status) {
      EXPECT_TRUE(header.ends_with(render_cache_status(*r.cache_status))) << header;
    }
    return header;
  }

  ClockedCache c_;
  CountingHandler h_;
  std::unique_ptr<PageCache> pc_;
};

TEST_F(PageCacheTest, MissStoresThenHitServesWithoutTheHandler) {
  page();
  Response first = serve("/hello/");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "hello");
  EXPECT_EQ(status_of(first), "cachekit; fwd=uri-miss; stored; ttl=600");
  EXPECT_EQ(first.headers.get("Cache-Control"), "max-age=600");  // Django's patch
  EXPECT_TRUE(first.headers.contains("Expires"));
  EXPECT_TRUE(first.headers.contains("ETag"));

  Response second = serve("/hello/");
  EXPECT_EQ(h_.count(), 1);
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "hello");
  EXPECT_EQ(status_of(second), "cachekit; hit; ttl=600");
  EXPECT_EQ(first.cache_status,
            (CacheStatus{.fwd = CacheStatus::Fwd::kUriMiss, .stored = true, .ttl = 600}));
  EXPECT_EQ(second.cache_status, CacheStatus::hit(600));
  EXPECT_EQ(second.headers.get("Age"), "0");
  EXPECT_EQ(second.headers.get("ETag"), first.headers.get("ETag"));
  ASSERT_TRUE(first.headers.contains("Date"));  // the generation time Age counts from
  EXPECT_EQ(second.headers.get("Date"), first.headers.get("Date"));
  EXPECT_EQ(second.headers.get("Content-Type"), "text/plain; charset=utf-8");
}

TEST_F(PageCacheTest, AgeAndTtlFollowTheClockThenTheEntryExpires) {
  page({.page_timeout = seconds(60)});
  serve("/p/");
  c_.clock.advance(seconds(7));
  Response hit = serve("/p/");
  EXPECT_EQ(hit.headers.get("Age"), "7");
  EXPECT_EQ(status_of(hit), "cachekit; hit; ttl=53");
  c_.clock.advance(std::chrono::milliseconds(52999));
  EXPECT_EQ(status_of(serve("/p/")), "cachekit; hit; ttl=0");
  c_.clock.advance(std::chrono::milliseconds(1));
  // The store expires the page and its header list with its freshness: a plain miss.
  Response expired = serve("/p/");
  EXPECT_EQ(h_.count(), 2);
  EXPECT_EQ(status_of(expired), "cachekit; fwd=uri-miss; stored; ttl=60");
  EXPECT_FALSE(expired.headers.contains("Age"));
}

TEST_F(PageCacheTest, AnEntryTheStoreStillHoldsPastFreshnessIsStale) {
  // The page cache's clock runs ahead of the store's (a server keeping its own time).
  ManualClock page_clock;
  PageCacheOptions o;
  o.cache = c_.cache.get();
  o.clock = &page_clock;
  pc_ = std::make_unique<PageCache>(std::move(o));
  serve("/p/");
  page_clock.advance(seconds(601));
  EXPECT_EQ(status_of(serve("/p/")), "cachekit; fwd=stale; stored; ttl=600");
  EXPECT_EQ(h_.count(), 2);
}

TEST_F(PageCacheTest, UpstreamAgeCountsAgainstTheLifetime) {
  page();
  h_.make = [](Request&) {
    Response r = Response::text("proxied");
    r.headers.set("Cache-Control", "max-age=100");
    r.headers.set("Age", "30");
    return r;
  };
  EXPECT_EQ(status_of(serve("/p/")), "cachekit; fwd=uri-miss; stored; ttl=70");
  c_.clock.advance(seconds(5));
  EXPECT_EQ(serve("/p/").headers.get("Age"), "35");
}

TEST_F(PageCacheTest, CachePageTimeoutWinsAndMaxAgeIsTheSmaller) {
  page({.page_timeout = seconds(60)});
  h_.make = [](Request&) {
    Response r = Response::text("x");
    r.headers.set("Cache-Control", "max-age=300, public");
    return r;
  };
  Response first = serve("/p/");
  EXPECT_EQ(status_of(first), "cachekit; fwd=uri-miss; stored; ttl=60");
  EXPECT_EQ(first.headers.get("Cache-Control"), "max-age=60, public");
}

TEST_F(PageCacheTest, SharedOnlyFreshnessIsNotWidenedToBrowsers) {
  page();
  h_.make = [](Request&) {
    Response r = Response::text("x");
    r.headers.set("Cache-Control", "s-maxage=30");
    return r;
  };
  Response first = serve("/p/");
  EXPECT_EQ(status_of(first), "cachekit; fwd=uri-miss; stored; ttl=30");
  EXPECT_EQ(first.headers.get("Cache-Control"), "s-maxage=30");
  EXPECT_FALSE(first.headers.contains("Expires"));
}

TEST_F(PageCacheTest, NotStoredSaysWhyAndCallsTheHandlerAgain) {
  page({.page_timeout = seconds(60)});
  struct Case {
    std::function<void(Response&)> patch;
    std::string status;
  };
  const std::vector<Case> cases = {
      {[](Response& r) { r.headers.set("Cache-Control", "no-store"); },
       "cachekit; fwd=uri-miss; detail=no-store"},
      {[](Response& r) { r.headers.set("Cache-Control", "private, max-age=60"); },
       "cachekit; fwd=uri-miss; detail=private"},
      {[](Response& r) { r.headers.set("Cache-Control", "no-cache"); },
       "cachekit; fwd=uri-miss; detail=no-cache"},
      {[](Response& r) { r.headers.add("Set-Cookie", "csrftoken=abc"); },
       "cachekit; fwd=uri-miss; detail=set-cookie"},
      {[](Response& r) { r.headers.set("Vary", "*"); }, "cachekit; fwd=uri-miss; detail=vary-star"},
      {[](Response& r) { r.status = 503; }, "cachekit; fwd=uri-miss; detail=status"},
      {[](Response& r) { r.status = 302; }, "cachekit; fwd=uri-miss; detail=no-freshness"},
      {[](Response& r) { r.headers.set("Cache-Control", "max-age=0"); },
       "cachekit; fwd=uri-miss; detail=zero-lifetime"},
      {[](Response& r) { add_never_cache_headers(r); }, "cachekit; fwd=uri-miss; detail=no-store"},
  };
  int n = 0;
  for (const Case& c : cases) {
    std::string path = "/p" + std::to_string(n++) + "/";
    h_.make = [patch = c.patch](Request&) {
      Response r = Response::text("body");
      patch(r);
      return r;
    };
    int before = h_.count();
    Response first = serve(path);
    Response again = serve(path);
    EXPECT_EQ(status_of(first), c.status);
    EXPECT_EQ(status_of(again), c.status);
    EXPECT_EQ(h_.count(), before + 2) << c.status;
    EXPECT_EQ(first.body, "body");
  }
}

TEST_F(PageCacheTest, SetCookieIsNeverReplayed) {
  page();
  int n = 0;
  h_.make = [&n](Request&) {
    Response r = Response::text("x");
    r.headers.add("Set-Cookie", "sessionid=" + std::to_string(++n));
    return r;
  };
  EXPECT_EQ(serve("/p/").headers.get("Set-Cookie"), "sessionid=1");
  EXPECT_EQ(serve("/p/").headers.get("Set-Cookie"), "sessionid=2");
}

// Django's request.COOKIES → patch_vary_headers: a handler that reads the cookie made a page
// for that cookie, whether or not it remembered to say Vary: Cookie.
TEST_F(PageCacheTest, CookieReadByTheHandlerKeepsUsersApart) {
  page();
  for (bool via_header : {false, true}) {
    h_.make = [via_header](Request& r) {
      std::string user = via_header ? std::string(r.headers.get("Cookie").value_or("anonymous"))
                                    : r.cookie("user").value_or("anonymous");
      return Response::text("hello " + user + " " + r.path);
    };
    std::string path = via_header ? "/header/" : "/accessor/";
    auto as = [&](const std::string& cookie) {
      std::vector<std::pair<std::string, std::string>> headers;
      if (!cookie.empty()) headers.emplace_back("Cookie", cookie);
      return serve(path, headers);
    };
    Response alice = as("user=alice");
    EXPECT_EQ(alice.headers.get("Vary"), "Cookie");
    EXPECT_EQ(status_of(alice), "cachekit; fwd=uri-miss; stored; ttl=600");
    Response bob = as("user=bob");
    EXPECT_EQ(bob.body.view().find("alice"), std::string_view::npos) << path;
    EXPECT_NE(bob.body.view().find("bob"), std::string_view::npos) << path;
    Response nobody = as("");
    EXPECT_NE(nobody.body.view().find("anonymous"), std::string_view::npos) << path;
    // Each still hits its own page.
    EXPECT_EQ(status_of(as("user=alice")), "cachekit; hit; ttl=600") << path;
    EXPECT_NE(as("user=bob").body.view().find("bob"), std::string_view::npos) << path;
    EXPECT_EQ(status_of(as("")), "cachekit; hit; ttl=600") << path;
  }
  EXPECT_EQ(h_.count(), 6);
}

TEST_F(PageCacheTest, PageThatIgnoresTheCookieIsSharedAcrossCookies) {
  page();
  Response alice = serve("/p/", {{"Cookie", "user=alice"}});
  EXPECT_FALSE(alice.headers.contains("Vary"));
  EXPECT_EQ(status_of(serve("/p/", {{"Cookie", "user=bob"}})), "cachekit; hit; ttl=600");
  EXPECT_EQ(h_.count(), 1);
}

TEST_F(PageCacheTest, SetCookieIsNeverStoredEvenWhenPublic) {
  page();
  int n = 0;
  h_.make = [&n](Request&) {
    Response r = Response::text("page");
    r.headers.set("Cache-Control", "public, s-maxage=60, max-age=60");
    r.headers.add("set-cookie", "sessionid=" + std::to_string(++n));
    return r;
  };
  for (int i = 1; i <= 3; ++i) {
    Response r = serve("/p/");
    EXPECT_EQ(status_of(r), "cachekit; fwd=uri-miss; detail=set-cookie");
    EXPECT_EQ(r.headers.get("Set-Cookie"), "sessionid=" + std::to_string(i));
    EXPECT_EQ(pc_->fetch(get("/p/")), std::nullopt);
  }
  EXPECT_EQ(h_.count(), 3);
}

TEST_F(PageCacheTest, IfNoneMatchIsAnswered304FromTheEntry) {
  page();
  std::string etag(serve("/p/").headers.get("ETag").value());
  ASSERT_EQ(etag.front(), '"');  // strong, computed at store time
  Response not_modified = serve("/p/", {{"If-None-Match", etag}});
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_TRUE(not_modified.body.empty());
  EXPECT_EQ(not_modified.headers.get("ETag"), etag);
  EXPECT_EQ(status_of(not_modified), "cachekit; hit; ttl=600");
  EXPECT_TRUE(not_modified.headers.contains("Age"));
  EXPECT_EQ(serve("/p/", {{"If-None-Match", "W/" + etag}}).status, 304);
  Response changed = serve("/p/", {{"If-None-Match", "\"other\""}});
  EXPECT_EQ(changed.status, 200);
  EXPECT_EQ(changed.body, "hello");
  EXPECT_EQ(h_.count(), 1);
}

TEST_F(PageCacheTest, HandlerEtagIsKeptAndDifferentBodiesGetDifferentEtags) {
  page();
  h_.make = [](Request& r) {
    Response res = Response::text("body of " + r.path);
    if (r.path == "/own/") res.headers.set("ETag", "W/\"v7\"");
    return res;
  };
  EXPECT_EQ(serve("/own/").headers.get("ETag"), "W/\"v7\"");
  EXPECT_NE(serve("/a/").headers.get("ETag"), serve("/b/").headers.get("ETag"));
}

TEST_F(PageCacheTest, IfModifiedSinceIsAnswered304FromTheEntry) {
  page();
  h_.make = [](Request&) {
    Response r = Response::text("x");
    r.headers.set("Last-Modified", "Sat, 12 Feb 2011 17:38:44 GMT");
    return r;
  };
  serve("/p/");
  EXPECT_EQ(serve("/p/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:38:44 GMT"}}).status, 304);
  EXPECT_EQ(serve("/p/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:00:00 GMT"}}).status, 200);
  EXPECT_EQ(h_.count(), 1);
}

TEST_F(PageCacheTest, HeadIsServedFromTheCachedGet) {
  page();
  Response full = serve("/p/");
  Response head = serve(make_request("HEAD", "/p/"));
  EXPECT_EQ(h_.count(), 1);
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.headers.get("Content-Length"), std::to_string(full.body.size()));
  EXPECT_EQ(head.headers.get("ETag"), full.headers.get("ETag"));
  EXPECT_EQ(status_of(head), "cachekit; hit; ttl=600");
}

TEST_F(PageCacheTest, HeadMissIsStoredUnderHeadAndNeverAnswersGet) {
  page();
  serve(make_request("HEAD", "/p/"));
  Response head = serve(make_request("HEAD", "/p/"));
  EXPECT_EQ(status_of(head), "cachekit; hit; ttl=600");
  EXPECT_EQ(h_.count(), 1);
  Response full = serve("/p/");
  EXPECT_EQ(h_.count(), 2);
  EXPECT_EQ(status_of(full), "cachekit; fwd=miss; stored; ttl=600");
  EXPECT_EQ(full.body, "hello");
}

TEST_F(PageCacheTest, VaryKeepsVariantsApart) {
  page();
  h_.make = [](Request& r) {
    Response res =
        Response::text("lang=" + std::string(r.headers.get("Accept-Language").value_or("")));
    patch_vary_headers(res, {"Accept-Language"});
    return res;
  };
  EXPECT_EQ(serve("/p/", {{"Accept-Language", "en"}}).body, "lang=en");
  Response fr = serve("/p/", {{"Accept-Language", "fr"}});
  EXPECT_EQ(fr.body, "lang=fr");
  EXPECT_EQ(status_of(fr), "cachekit; fwd=miss; stored; ttl=600");
  Response en = serve("/p/", {{"Accept-Language", "en"}});
  EXPECT_EQ(en.body, "lang=en");
  EXPECT_EQ(status_of(en), "cachekit; hit; ttl=600");
  EXPECT_EQ(serve("/p/").body, "lang=");  // absent is its own variant
  EXPECT_EQ(serve("/p/", {{"Accept-Language", "fr"}}).body, "lang=fr");
  EXPECT_EQ(h_.count(), 3);
}

TEST_F(PageCacheTest, AmbiguousVaryConcatenationIsNotServedToTheOtherVariant) {
  // Django hashes "gzip"+"en" and "gzipe"+"n" to the same key; the stored values tell apart.
  page();
  h_.make = [](Request& r) {
    Response res = Response::text(std::string(r.headers.get("Accept-Encoding").value_or("")) + "|" +
                                  std::string(r.headers.get("Accept-Language").value_or("")));
    patch_vary_headers(res, {"Accept-Encoding", "Accept-Language"});
    return res;
  };
  EXPECT_EQ(serve("/p/", {{"Accept-Encoding", "gzipe"}, {"Accept-Language", "n"}}).body, "gzipe|n");
  Response victim = serve("/p/", {{"Accept-Encoding", "gzip"}, {"Accept-Language", "en"}});
  EXPECT_EQ(victim.body, "gzip|en");
  EXPECT_EQ(status_of(victim), "cachekit; fwd=vary-miss; stored; ttl=600");
}

TEST_F(PageCacheTest, AuthorizationRules) {
  page();
  h_.make = [](Request& r) {
    Response res = Response::text("for " + r.path);
    if (r.path == "/public/") res.headers.set("Cache-Control", "public, max-age=60");
    return res;
  };
  // Not stored from an authorized request unless public.
  Response mine = serve("/private/", {{"Authorization", "Bearer a"}});
  EXPECT_EQ(status_of(mine), "cachekit; fwd=uri-miss; detail=authorization");
  EXPECT_EQ(status_of(serve("/private/")), "cachekit; fwd=uri-miss; stored; ttl=600");
  // An entry stored for anonymous requests is not served to an authorized one.
  Response denied = serve("/private/", {{"Authorization", "Bearer a"}});
  EXPECT_EQ(status_of(denied), "cachekit; fwd=request; detail=authorization");
  // Public: stored from an authorized request and served to anyone.
  EXPECT_EQ(status_of(serve("/public/", {{"Authorization", "Bearer a"}})),
            "cachekit; fwd=uri-miss; stored; ttl=60");
  EXPECT_EQ(status_of(serve("/public/", {{"Authorization", "Bearer b"}})), "cachekit; hit; ttl=60");
  EXPECT_EQ(status_of(serve("/public/")), "cachekit; hit; ttl=60");
  EXPECT_EQ(h_.count(), 4);
}

TEST_F(PageCacheTest, InvalidHostIsNeverKeyed) {
  page({.allowed_hosts = {"www.example.com"}});
  for (const char* host : {"evil.com", "www.example.com/x", "a b", ""}) {
    Response r = serve(make_request("GET", "/p/", {}, host));
    EXPECT_EQ(status_of(r), "cachekit; fwd=bypass; detail=invalid-host") << host;
    EXPECT_EQ(r.body, "hello");
  }
  EXPECT_EQ(h_.count(), 4);
  EXPECT_EQ(status_of(serve("/p/")), "cachekit; fwd=uri-miss; stored; ttl=600");
  EXPECT_EQ(status_of(serve(make_request("GET", "/p/", {}, "WWW.EXAMPLE.COM"))),
            "cachekit; hit; ttl=600");
}

TEST_F(PageCacheTest, HostSpelledWithCaseOrDefaultPortSharesOneKey) {
  page();
  EXPECT_EQ(status_of(serve(make_request("GET", "/p/", {}, "example.com"))),
            "cachekit; fwd=uri-miss; stored; ttl=600");
  for (const char* host : {"EXAMPLE.com:80", "Example.COM", "example.com.", "example.com:80"}) {
    EXPECT_EQ(status_of(serve(make_request("GET", "/p/", {}, host))), "cachekit; hit; ttl=600")
        << host;
  }
  EXPECT_EQ(h_.count(), 1);
  // A POST to one spelling invalidates the page for all of them.
  Request write = make_request("POST", "/p/", {}, "EXAMPLE.COM:80");
  serve(write);
  EXPECT_EQ(pc_->fetch(make_request("GET", "/p/", {}, "example.com")), std::nullopt);
  serve(make_request("GET", "/p/", {}, "example.com"));
  EXPECT_TRUE(pc_->invalidate("HTTP://Example.com:80/p/"));
  EXPECT_EQ(pc_->fetch(make_request("GET", "/p/", {}, "example.com")), std::nullopt);
}

TEST_F(PageCacheTest, UpstreamCacheStatusIsKeptAndOursAppended) {
  page();
  h_.make = [](Request&) {
    Response r = Response::text("x");
    r.headers.set("Cache-Status", "origin-cache; hit");
    return r;
  };
  EXPECT_EQ(status_of(serve("/p/")), "origin-cache; hit, cachekit; fwd=uri-miss; stored; ttl=600");
  EXPECT_EQ(status_of(serve("/p/")), "origin-cache; hit, cachekit; hit; ttl=600");
}

TEST_F(PageCacheTest, HopByHopFieldsAreNotStored) {
  page();
  h_.make = [](Request&) {
    Response r = Response::text("x");
    r.headers.set("Connection", "X-Hop");
    r.headers.set("X-Hop", "1");
    r.headers.set("Keep-Alive", "timeout=5");
    r.headers.set("X-End-To-End", "1");
    return r;
  };
  serve("/p/");
  Response hit = serve("/p/");
  EXPECT_FALSE(hit.headers.contains("Connection"));
  EXPECT_FALSE(hit.headers.contains("X-Hop"));
  EXPECT_FALSE(hit.headers.contains("Keep-Alive"));
  EXPECT_EQ(hit.headers.get("X-End-To-End"), "1");
}

TEST_F(PageCacheTest, FetchAndUpdateSeparately) {
  page();
  Request r = get("/p/");
  EXPECT_EQ(pc_->fetch(r), std::nullopt);
  Response res = Response::text("manual");
  pc_->update(r, res);
  EXPECT_EQ(status_of(res), "cachekit; fwd=uri-miss; stored; ttl=600");
  auto hit = pc_->fetch(r);
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->body, "manual");
  EXPECT_EQ(pc_->fetch(make_request("POST", "/p/")), std::nullopt);
  EXPECT_TRUE(pc_->fetch_is_local());
}

TEST_F(PageCacheTest, HitSharesTheStoredBytes) {
  page();
  std::string big(64 * 1024, 'x');
  h_.make = [&big](Request&) { return Response::text(big); };
  Request r = get("/big/");
  serve(r);
  auto key = get_cache_key(r, *c_.cache);
  ASSERT_TRUE(key);
  auto stored = c_.cache->get(*key);  // locmem hands out its own memory
  ASSERT_TRUE(stored);
  auto hit = pc_->fetch(r);
  ASSERT_TRUE(hit);
  ASSERT_EQ(hit->body.size(), big.size());
  EXPECT_EQ(hit->body.data(), stored->data() + stored->size() - big.size());
  EXPECT_EQ(hit->body.view(), big);
}

TEST_F(PageCacheTest, CorruptEntryIsAMissAndIsReplaced) {
  page();
  Request r = get("/p/");
  serve(r);
  auto key = get_cache_key(r, *c_.cache);
  ASSERT_TRUE(key);
  for (std::string junk : {std::string("garbage"), std::string("CKP\x01", 4),
                           std::string("CKP\x03 an entry of a future version")}) {
    c_.cache->set(*key, junk, 60);
    Response again = serve(r);
    EXPECT_EQ(again.body, "hello");
    EXPECT_EQ(status_of(again), "cachekit; fwd=miss; stored; ttl=600");
  }
  EXPECT_EQ(status_of(serve(r)), "cachekit; hit; ttl=600");
  EXPECT_EQ(h_.count(), 4);
  // A corrupt header list is a miss too.
  c_.cache->set(cache_header_key("", "http://www.example.com/p/"), "{not json", 60);
  EXPECT_EQ(status_of(serve(r)), "cachekit; fwd=uri-miss; stored; ttl=600");
}

// ---- one round trip: keys_to_prefetch + fetch_prefetched ----

// What a server's io thread does on a shared store: read every key in one go, then look up.
std::optional<Response> prefetched_hit(const PageCache& pages, const Cache& cache,
                                       const Request& request) {
  std::vector<std::string> keys = pages.keys_to_prefetch(request);
  if (keys.empty()) return std::nullopt;
  std::vector<std::optional<Bytes>> values;
  values.reserve(keys.size());
  for (const std::string& key : keys) values.push_back(cache.get(key));
  return pages.fetch_prefetched(request, keys, values);
}

TEST_F(PageCacheTest, PrefetchedKeysAnswerAHitOnceTheHeaderListIsKnown) {
  PageCache& pages = page();
  EXPECT_TRUE(pages.keys_to_prefetch(get("/hello/")).empty());  // nothing read or stored yet
  (void)serve("/hello/");
  // The store taught the page cache the URI's header list: the header list and the GET page.
  EXPECT_EQ(pages.keys_to_prefetch(get("/hello/")).size(), 2U);
  EXPECT_EQ(pages.keys_to_prefetch(make_request("HEAD", "/hello/")).size(), 3U);
  EXPECT_TRUE(pages.keys_to_prefetch(make_request("POST", "/hello/")).empty());
  auto hit = prefetched_hit(pages, *c_.cache, get("/hello/"));
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->body, "hello");
  EXPECT_EQ(status_of(*hit), "cachekit; hit; ttl=600");
  EXPECT_EQ(h_.count(), 1);
  // Another URI is still unknown.
  EXPECT_TRUE(pages.keys_to_prefetch(get("/other/")).empty());
}

TEST_F(PageCacheTest, AHeaderListThatNamesOtherHeadersNowSendsTheLookupTheFullWay) {
  PageCache& pages = page();
  (void)serve("/hello/");
  ASSERT_TRUE(prefetched_hit(pages, *c_.cache, get("/hello/")).has_value());
  // Another process (another PageCache on the same store) invalidates the URI, then stores it
  // varying on Accept-Language: the header list now names it, so the page key remembered here
  // is stale.
  PageCache other(PageCacheOptions{.cache = c_.cache.get(), .clock = &c_.clock});
  ASSERT_TRUE(other.invalidate("http://www.example.com/hello/"));
  Handler by_language = [](Request& r) {
    Response response =
        Response::text("hello in " + std::string(r.headers.get("Accept-Language").value_or("?")));
    response.headers.set("Vary", "Accept-Language");
    return response;
  };
  Request french = get("/hello/", {{"Accept-Language", "fr"}});
  (void)other.serve(french, by_language);
  // The old page is unreachable: the prefetched values do not hold the page the new header
  // list leads to, so no hit comes from them (never the old page)...
  EXPECT_FALSE(prefetched_hit(pages, *c_.cache, french).has_value());
  // ...the full lookup finds the new variant and learns the new list...
  auto full = pages.fetch(french);
  ASSERT_TRUE(full.has_value());
  EXPECT_EQ(full->body, "hello in fr");
  // ...after which one round trip answers again.
  auto again = prefetched_hit(pages, *c_.cache, french);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->body, "hello in fr");
}

}  // namespace
}  // namespace cachekit::http
