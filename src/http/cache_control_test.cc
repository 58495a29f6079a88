// Django's header helpers, checked against Django's own test tables (tests/cache/tests.py:
// test_patch_cache_control, test_patch_vary_headers, test_get_max_age...; tests/middleware:
// ConditionalGetMiddlewareTest), and the decorators.

#include "cachekit/http/cache_control.h"

#include <gtest/gtest.h>

#include <set>

#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::get;
using testing::make_request;

std::set<std::string> parts(const Response& r) {
  std::set<std::string> out;
  std::string cc(r.headers.get("Cache-Control").value_or(""));
  std::size_t start = 0;
  while (start <= cc.size()) {
    std::size_t comma = cc.find(',', start);
    std::string part = cc.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.erase(0, 1);
    if (!part.empty()) out.insert(part);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

struct PatchCase {
  std::optional<std::string> initial;
  CacheDirectives directives;
  std::set<std::string> expected;
};

TEST(PatchCacheControl, DjangoTable) {
  const std::vector<PatchCase> cases = {
      {std::nullopt, {{"private"}}, {"private"}},
      {"", {{"private"}}, {"private"}},
      {"", {{"no_cache", "Set-Cookie"}}, {"no-cache=Set-Cookie"}},
      {"", {{"no-cache", "Set-Cookie"}}, {"no-cache=Set-Cookie"}},
      {"no-cache=Set-Cookie", {{"no_cache"}}, {"no-cache"}},
      {"no-cache=Set-Cookie,no-cache=Link", {{"no_cache"}}, {"no-cache"}},
      {"no-cache=Set-Cookie", {{"no_cache", "Link"}}, {"no-cache=Set-Cookie", "no-cache=Link"}},
      {"no-cache=Set-Cookie,no-cache=Link",
       {{"no_cache", "Custom"}},
       {"no-cache=Set-Cookie", "no-cache=Link", "no-cache=Custom"}},
      {"private", {{"private"}}, {"private"}},
      {"private", {{"public"}}, {"public"}},
      {"public", {{"public"}}, {"public"}},
      {"public", {{"private"}}, {"private"}},
      {"must-revalidate,max-age=60,private",
       {{"public"}},
       {"must-revalidate", "max-age=60", "public"}},
      {"must-revalidate,max-age=60,public",
       {{"private"}},
       {"must-revalidate", "max-age=60", "private"}},
      {"must-revalidate,max-age=60", {{"public"}}, {"must-revalidate", "max-age=60", "public"}},
  };
  for (const PatchCase& c : cases) {
    Response r;
    if (c.initial) r.headers.set("Cache-Control", *c.initial);
    patch_cache_control(r, c.directives);
    EXPECT_EQ(parts(r), c.expected) << c.initial.value_or("(none)");
  }
}

TEST(PatchCacheControl, SmallerMaxAgeWinsBothWays) {
  Response r;
  r.headers.set("Cache-Control", "max-age=60, public");
  patch_cache_control(r, {{"max-age", 300}});
  EXPECT_EQ(r.headers.get("Cache-Control"), "max-age=60, public");
  patch_cache_control(r, {{"max_age", 10}});
  EXPECT_EQ(r.headers.get("Cache-Control"), "max-age=10, public");
}

TEST(PatchCacheControl, WhitespaceAndCaseTolerantAndOrderKept) {
  Response r;
  r.headers.set("Cache-Control", "  Public ,  Max-Age=5 ");
  patch_cache_control(r, {{"s-maxage", 30}});
  EXPECT_EQ(r.headers.get("Cache-Control"), "public, max-age=5, s-maxage=30");
}

TEST(GetMaxAge, IntegerOrNothing) {
  Response r;
  EXPECT_EQ(get_max_age(r), std::nullopt);
  r.headers.set("Cache-Control", "public");
  EXPECT_EQ(get_max_age(r), std::nullopt);
  r.headers.set("Cache-Control", "max-age=3600");
  EXPECT_EQ(get_max_age(r), 3600);
  r.headers.set("Cache-Control", "max-age=abc");
  EXPECT_EQ(get_max_age(r), std::nullopt);
  r.headers.set("Cache-Control", "max-age");
  EXPECT_EQ(get_max_age(r), std::nullopt);
}

TEST(PatchResponseHeaders, SetsExpiresOnlyWhenAbsentAndMaxAge) {
  ManualClock clock(TimePoint(seconds(784111777)));
  Response r;
  patch_response_headers(r, seconds(60), clock);
  EXPECT_EQ(r.headers.get("Expires"), "Sun, 06 Nov 1994 08:50:37 GMT");
  EXPECT_EQ(r.headers.get("Cache-Control"), "max-age=60");

  Response keep;
  keep.headers.set("Expires", "Thu, 01 Jan 2037 00:00:00 GMT");
  patch_response_headers(keep, seconds(-5), clock);  // negative counts as 0
  EXPECT_EQ(keep.headers.get("Expires"), "Thu, 01 Jan 2037 00:00:00 GMT");
  EXPECT_EQ(keep.headers.get("Cache-Control"), "max-age=0");
}

TEST(AddNeverCacheHeaders, DjangoValue) {
  ManualClock clock(TimePoint(seconds(784111777)));
  Response r;
  add_never_cache_headers(r, clock);
  EXPECT_EQ(r.headers.get("Cache-Control"),
            "max-age=0, no-cache, no-store, must-revalidate, private");
  EXPECT_EQ(r.headers.get("Expires"), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(PatchVaryHeaders, DjangoTable) {
  struct Case {
    std::optional<std::string> initial;
    std::vector<std::string> add;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {std::nullopt, {"Accept-Encoding"}, "Accept-Encoding"},
      {"Accept-Encoding", {"accept-encoding"}, "Accept-Encoding"},
      {"Accept-Encoding", {"ACCEPT-ENCODING"}, "Accept-Encoding"},
      {"Cookie", {"Accept-Encoding"}, "Cookie, Accept-Encoding"},
      {"Cookie, Accept-Encoding", {"Accept-Encoding"}, "Cookie, Accept-Encoding"},
      {"Cookie, Accept-Encoding", {"Accept-Encoding", "cookie"}, "Cookie, Accept-Encoding"},
      {std::nullopt, {"Accept-Encoding", "COOKIE"}, "Accept-Encoding, COOKIE"},
      {"Cookie,     Accept-Encoding", {"Accept-Encoding", "cookie"}, "Cookie, Accept-Encoding"},
      {"Cookie    ,     Accept-Encoding", {"Accept-Encoding", "cookie"}, "Cookie, Accept-Encoding"},
      {"*", {"Accept-Language", "Cookie"}, "*"},
      {"Accept-Language, Cookie", {"*"}, "*"},
  };
  for (const Case& c : cases) {
    Response r;
    if (c.initial) r.headers.set("Vary", *c.initial);
    patch_vary_headers(r, c.add);
    EXPECT_EQ(r.headers.get("Vary"), c.expected) << c.initial.value_or("(none)");
  }
}

TEST(HasVaryHeader, CaseInsensitiveMembership) {
  Response r;
  EXPECT_FALSE(has_vary_header(r, "Cookie"));
  r.headers.set("Vary", "Accept-Encoding, Cookie");
  EXPECT_TRUE(has_vary_header(r, "cookie"));
  EXPECT_TRUE(has_vary_header(r, "ACCEPT-ENCODING"));
  EXPECT_FALSE(has_vary_header(r, "Accept"));
}

TEST(Decorators, PatchTheWrappedHandlersResponse) {
  Handler view = [](Request&) { return Response::text("ok"); };
  Request req = get("/");
  Response nc = never_cache(view)(req);
  EXPECT_EQ(nc.headers.get("Cache-Control"),
            "max-age=0, no-cache, no-store, must-revalidate, private");
  EXPECT_TRUE(nc.headers.contains("Expires"));
  Response cc = cache_control({{"max-age", 60}, {"public"}}, view)(req);
  EXPECT_EQ(cc.headers.get("Cache-Control"), "max-age=60, public");
  Response vh = vary_on_headers({"Accept-Language", "User-Agent"}, view)(req);
  EXPECT_EQ(vh.headers.get("Vary"), "Accept-Language, User-Agent");
  Response vc = vary_on_cookie(vary_on_headers({"cookie"}, view))(req);
  EXPECT_EQ(vc.headers.get("Vary"), "cookie");
}

// ---- conditional requests ----

Response with_validators(std::string etag, std::string last_modified = {}) {
  Response r = Response::text("body");
  if (!etag.empty()) r.headers.set("ETag", std::move(etag));
  if (!last_modified.empty()) r.headers.set("Last-Modified", std::move(last_modified));
  r.headers.set("Cache-Control", "max-age=60");
  r.headers.set("Content-Type", "text/plain");
  return r;
}

int outcome(const Request& req, const Response& res) {
  auto c = get_conditional_response(req, res);
  return c ? c->status : res.status;
}

TEST(ConditionalResponse, IfNoneMatchUsesWeakComparison) {
  Response res = with_validators("\"spam\"");
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "\"spam\""}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "W/\"spam\""}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "\"eggs\", \"spam\""}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "*"}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "\"eggs\""}}), res), 200);
  EXPECT_EQ(outcome(get("/", {{"If-None-Match", "spam"}}), res), 200);  // malformed: ignored
  EXPECT_EQ(outcome(make_request("HEAD", "/", {{"If-None-Match", "\"spam\""}}), res), 304);
  EXPECT_EQ(outcome(make_request("POST", "/", {{"If-None-Match", "\"spam\""}}), res), 412);
}

TEST(ConditionalResponse, NotModifiedKeepsTheRfcHeadersOnly) {
  Response res = with_validators("\"spam\"", "Sat, 12 Feb 2011 17:38:44 GMT");
  res.headers.set("Vary", "Cookie");
  auto c = get_conditional_response(get("/", {{"If-None-Match", "\"spam\""}}), res);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, 304);
  EXPECT_TRUE(c->body.empty());
  EXPECT_EQ(c->headers.get("ETag"), "\"spam\"");
  EXPECT_EQ(c->headers.get("Cache-Control"), "max-age=60");
  EXPECT_EQ(c->headers.get("Last-Modified"), "Sat, 12 Feb 2011 17:38:44 GMT");
  EXPECT_EQ(c->headers.get("Vary"), "Cookie");
  EXPECT_FALSE(c->headers.contains("Content-Type"));
}

TEST(ConditionalResponse, IfMatchUsesStrongComparison) {
  EXPECT_EQ(outcome(get("/", {{"If-Match", "\"spam\""}}), with_validators("\"spam\"")), 200);
  EXPECT_EQ(outcome(get("/", {{"If-Match", "\"eggs\""}}), with_validators("\"spam\"")), 412);
  EXPECT_EQ(outcome(get("/", {{"If-Match", "W/\"spam\""}}), with_validators("W/\"spam\"")), 412);
  EXPECT_EQ(outcome(get("/", {{"If-Match", "*"}}), with_validators("W/\"spam\"")), 200);
  EXPECT_EQ(outcome(get("/", {{"If-Match", "*"}}), with_validators("")), 412);
}

TEST(ConditionalResponse, ModifiedSinceAndUnmodifiedSince) {
  Response res = with_validators("", "Sat, 12 Feb 2011 17:38:44 GMT");
  EXPECT_EQ(outcome(get("/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:38:44 GMT"}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:41:44 GMT"}}), res), 304);
  EXPECT_EQ(outcome(get("/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:35:44 GMT"}}), res), 200);
  EXPECT_EQ(outcome(get("/", {{"If-Modified-Since", "not a date"}}), res), 200);
  EXPECT_EQ(
      outcome(make_request("POST", "/", {{"If-Modified-Since", "Sat, 12 Feb 2011 17:41:44 GMT"}}),
              res),
      200);
  EXPECT_EQ(outcome(get("/", {{"If-Unmodified-Since", "Sat, 12 Feb 2011 17:35:44 GMT"}}), res),
            412);
  EXPECT_EQ(outcome(get("/", {{"If-Unmodified-Since", "Sat, 12 Feb 2011 17:41:44 GMT"}}), res),
            200);
}

TEST(ConditionalResponse, IfNoneMatchTakesPrecedenceOverIfModifiedSince) {
  Response res = with_validators("\"spam\"", "Sat, 12 Feb 2011 17:38:44 GMT");
  Request req = get(
      "/", {{"If-None-Match", "\"eggs\""}, {"If-Modified-Since", "Sat, 12 Feb 2011 17:41:44 GMT"}});
  EXPECT_EQ(outcome(req, res), 200);
}

TEST(ConditionalResponse, OnlySuccessfulResponsesBecomeConditional) {
  Response res = with_validators("\"spam\"");
  res.status = 404;
  EXPECT_EQ(get_conditional_response(get("/", {{"If-None-Match", "\"spam\""}}), res), std::nullopt);
}

TEST(ParseEtags, DjangoRules) {
  EXPECT_EQ(parse_etags(" * "), std::vector<std::string>{"*"});
  EXPECT_EQ(parse_etags("\"a\", W/\"b\", c, \"d"), (std::vector<std::string>{"\"a\"", "W/\"b\""}));
  EXPECT_TRUE(parse_etags("").empty());
}

}  // namespace
}  // namespace cachekit::http
