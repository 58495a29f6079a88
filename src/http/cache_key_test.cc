// Page-cache keys: Django's golden vectors (tests/cache/tests.py CacheUtils), the Vary header
// list, and the host validation Django's key scheme lacks. Expected MD5s were computed with
// Python's hashlib, independently of this code.

#include "cachekit/http/cache_key.h"

#include <gtest/gtest.h>

#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::ClockedCache;
using testing::get;
using testing::make_request;

constexpr const char* kEmptyMd5 = "d41d8cd98f00b204e9800998ecf8427e";

TEST(Md5Hex, KnownDigests) {
  EXPECT_EQ(md5_hex(""), kEmptyMd5);
  EXPECT_EQ(md5_hex("http://www.example.com/cache/test/"), "18a03f9c9649f7d684af5db3524f5c99");
}

TEST(CacheKey, DjangoGoldenVectors) {
  ClockedCache c;
  KeyOptions settings{.key_prefix = "settingsprefix"};
  Request request = get("/cache/test/");
  EXPECT_EQ(get_cache_key(request, *c.cache, settings), std::nullopt);  // nothing learned yet
  EXPECT_EQ(learn_cache_key(request, Response(), *c.cache, seconds(600), settings),
            "views.decorators.cache.cache_page.settingsprefix.GET."
            "18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(get_cache_key(request, *c.cache, settings),
            "views.decorators.cache.cache_page.settingsprefix.GET."
            "18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e");

  KeyOptions local{.key_prefix = "localprefix"};
  (void)learn_cache_key(request, Response(), *c.cache, seconds(600), local);
  EXPECT_EQ(get_cache_key(request, *c.cache, local),
            "views.decorators.cache.cache_page.localprefix.GET."
            "18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e");
}

TEST(CacheKey, QueryStringAndHostAreInTheKey) {
  ClockedCache c;
  KeyOptions settings{.key_prefix = "settingsprefix"};
  Request with_query = get("/cache/test/?test=1");
  (void)learn_cache_key(with_query, Response(), *c.cache, seconds(600), settings);
  EXPECT_EQ(get_cache_key(with_query, *c.cache, settings),
            "views.decorators.cache.cache_page.settingsprefix.GET."
            "beaf87a9a99ee81c673ea2d67ccbec2a.d41d8cd98f00b204e9800998ecf8427e");

  Request testserver = make_request("GET", "/cache/test/", {}, "testserver");
  Request testserver_query = make_request("GET", "/cache/test/?test=1", {}, "testserver");
  EXPECT_EQ(cache_page_key("settingsprefix", "GET", *cache_uri(testserver), testserver, {}),
            "views.decorators.cache.cache_page.settingsprefix.GET."
            "58a0a05c8a5620f813686ff969c26853.d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(
      cache_page_key("settingsprefix", "GET", *cache_uri(testserver_query), testserver_query, {}),
      "views.decorators.cache.cache_page.settingsprefix.GET."
      "0f1c2d56633c943073c4569d9a9502fe.d41d8cd98f00b204e9800998ecf8427e");
}

TEST(CacheKey, HeadLearnsAHeadKeyButLooksUpGet) {
  // Django's test_learn_cache_key: a Vary header the request lacks hashes to md5("").
  ClockedCache c;
  KeyOptions settings{.key_prefix = "settingsprefix"};
  Request head = make_request("HEAD", "/cache/test/");
  Response response;
  response.headers.set("Vary", "Pony");
  EXPECT_EQ(learn_cache_key(head, response, *c.cache, seconds(600), settings),
            "views.decorators.cache.cache_page.settingsprefix.HEAD."
            "18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(get_cache_key(head, *c.cache, settings),
            "views.decorators.cache.cache_page.settingsprefix.GET."
            "18a03f9c9649f7d684af5db3524f5c99.d41d8cd98f00b204e9800998ecf8427e");
}

TEST(CacheKey, HeaderKeyScheme) {
  EXPECT_EQ(cache_header_key("settingsprefix", "http://www.example.com/cache/test/"),
            "views.decorators.cache.cache_header.settingsprefix."
            "18a03f9c9649f7d684af5db3524f5c99");
}

TEST(CacheKey, VaryValuesAreHashedInSortedNameOrder) {
  ClockedCache c;
  Request r = get("/cache/test/", {{"Accept-Language", "en"}, {"Cookie", ""}});
  Response response;
  response.headers.set("Vary", "Cookie, Accept-Language");
  // Sorted: HTTP_ACCEPT_LANGUAGE then HTTP_COOKIE → md5("en" + "") = md5("en").
  EXPECT_EQ(learn_cache_key(r, response, *c.cache, seconds(60)),
            "views.decorators.cache.cache_page..GET.18a03f9c9649f7d684af5db3524f5c99."
            "9cfefed8fb9497baa5cd519d7d2bb5d7");
  Request fr = get("/cache/test/", {{"accept-language", "fr"}});
  EXPECT_EQ(get_cache_key(fr, *c.cache),
            "views.decorators.cache.cache_page..GET.18a03f9c9649f7d684af5db3524f5c99."
            "82a9e4d26595c87ab6e442391d8c5bba");
}

TEST(CacheKey, KeysDifferByUrlSchemeAndHost) {
  Request a = make_request("GET", "/p/", {}, "sub-1.example.com");
  Request b = make_request("GET", "/p/", {}, "sub-2.example.com");
  Request s = make_request("GET", "/p/", {}, "sub-1.example.com");
  s.scheme = "https";
  EXPECT_NE(cache_page_key("", "GET", *cache_uri(a), a, {}),
            cache_page_key("", "GET", *cache_uri(b), b, {}));
  EXPECT_NE(cache_page_key("", "GET", *cache_uri(a), a, {}),
            cache_page_key("", "GET", *cache_uri(s), s, {}));
}

TEST(CacheKey, LearnRefusesVaryStar) {
  ClockedCache c;
  Response response;
  response.headers.set("Vary", "Accept, *");
  EXPECT_EQ(learn_cache_key(get("/"), response, *c.cache, seconds(60)), std::nullopt);
}

TEST(VaryHeaderList, CgiNamesSortedWithoutDuplicates) {
  EXPECT_EQ(
      vary_header_list("Cookie, accept-language ,Accept-Encoding, cookie"),
      (std::vector<std::string>{"HTTP_ACCEPT_ENCODING", "HTTP_ACCEPT_LANGUAGE", "HTTP_COOKIE"}));
  EXPECT_EQ(vary_header_list(""), std::vector<std::string>{});
  EXPECT_EQ(vary_header_list("Cookie, *"), std::vector<std::string>{"*"});
  EXPECT_EQ(vary_header_list("Cookie, Accept\nX-Injected"), std::vector<std::string>{"*"});
  EXPECT_EQ(vary_header_list("Cookie, \"quoted\""), std::vector<std::string>{"*"});
  Response r;
  r.headers.add("Vary", "Cookie");
  r.headers.add("Vary", "Accept");
  EXPECT_EQ(vary_header_list(r), (std::vector<std::string>{"HTTP_ACCEPT", "HTTP_COOKIE"}));
}

TEST(RequestHeaderValue, JoinsRepeatsAndIgnoresUnderscoreNames) {
  Request r = get("/", {{"X-Forwarded-Host", "evil"}, {"Accept", "a"}, {"accept", "b"}});
  r.headers.add("X_Api_Key", "smuggled");
  EXPECT_EQ(request_header_value(r, "HTTP_ACCEPT"), "a,b");
  EXPECT_EQ(request_header_value(r, "HTTP_X_FORWARDED_HOST"), "evil");
  EXPECT_EQ(request_header_value(r, "HTTP_X_API_KEY"), std::nullopt);
  EXPECT_EQ(request_header_value(r, "HTTP_COOKIE"), std::nullopt);
}

TEST(ValidatedHost, DjangoSyntax) {
  for (const char* good : {"example.com", "EXAMPLE.com", "example.com:8000", "127.0.0.1", "[::1]",
                           "[::1]:8080", "[2001:db8::1]", "localhost.", "a-b.c"}) {
    EXPECT_TRUE(validated_host(good).has_value()) << good;
  }
  for (const char* bad : {"", "example.com/evil", "exa mple.com", "example.com:", "example.com:80x",
                          "[::1", "[zz::1]", "evil.com@good.com", "good.com\r\nX: y", "ex\tample",
                          ".", ":80", "example.com:80:80", "[]", "example.com\n"}) {
    EXPECT_EQ(validated_host(bad), std::nullopt) << bad;
  }
  EXPECT_EQ(validated_host("WWW.Example.COM:8000"), "www.example.com:8000");
}

TEST(ValidatedHost, AllowedHostsAsDjango) {
  std::vector<std::string> allowed = {"example.com", ".example.org", "[::1]"};
  EXPECT_TRUE(validated_host("example.com:8000", allowed));
  EXPECT_FALSE(validated_host("www.example.com", allowed));
  EXPECT_TRUE(validated_host("example.org", allowed));
  EXPECT_TRUE(validated_host("a.b.example.org", allowed));
  EXPECT_FALSE(validated_host("badexample.org", allowed));
  EXPECT_TRUE(validated_host("[::1]:80", allowed));
  EXPECT_TRUE(validated_host("anything.net", std::vector<std::string>{"*"}));
}

TEST(CacheUri, RefusesWhatCannotBeKeyed) {
  EXPECT_EQ(cache_uri(make_request("GET", "/p/?x=1", {}, "Example.COM")),
            "http://example.com/p/?x=1");
  EXPECT_EQ(cache_uri(make_request("GET", "/p/", {}, "")), std::nullopt);  // no Host
  EXPECT_EQ(cache_uri(make_request("GET", "/p/", {}, "bad host")), std::nullopt);
  Request two_hosts = make_request("GET", "/p/", {{"Host", "other.com"}});
  EXPECT_EQ(cache_uri(two_hosts), std::nullopt);
  Request ftp = make_request("GET", "/p/");
  ftp.scheme = "ftp";
  EXPECT_EQ(cache_uri(ftp), std::nullopt);
  std::vector<std::string> allowed = {"example.com"};
  EXPECT_EQ(cache_uri(make_request("GET", "/", {}, "www.example.com"), allowed), std::nullopt);
}

// One host spelled several ways is one key: otherwise any client can mint new keys for a
// page (and fill the store with copies) by varying the case, the default port or a trailing dot.
TEST(CacheUri, NormalisesHostCaseDefaultPortAndTrailingDot) {
  for (const char* host :
       {"example.com", "EXAMPLE.com:80", "Example.Com.", "example.com.:80", "example.com:080"}) {
    EXPECT_EQ(cache_uri(make_request("GET", "/p/?x=1", {}, host)), "http://example.com/p/?x=1")
        << host;
  }
  EXPECT_EQ(cache_uri(make_request("GET", "/p/", {}, "example.com:443")),
            "http://example.com:443/p/");  // not http's default port
  EXPECT_EQ(cache_uri(make_request("GET", "/p/", {}, "example.com:8080")),
            "http://example.com:8080/p/");
  Request secure = make_request("GET", "/p/", {}, "EXAMPLE.COM:443");
  secure.scheme = "https";
  EXPECT_EQ(cache_uri(secure), "https://example.com/p/");
  secure.headers.set("Host", "example.com:80");
  EXPECT_EQ(cache_uri(secure), "https://example.com:80/p/");
  EXPECT_EQ(cache_uri(make_request("GET", "/p/", {}, "[::1]:80")), "http://[::1]/p/");
}

}  // namespace
}  // namespace cachekit::http
