// The storage table of cache_policy.h, each rule both ways, and freshness precedence.

#include "cachekit/http/cache_policy.h"

#include <gtest/gtest.h>

#include "cachekit/http/cache_control.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::get;
using testing::make_request;

const TimePoint kNow{seconds(1700000000)};

Response respond(int status, std::vector<std::pair<std::string, std::string>> headers = {}) {
  Response r = Response::text("body", status);
  for (auto& [n, v] : headers) r.headers.add(n, v);
  return r;
}

StoreDecision decide(const Request& req, const Response& res, FreshnessOptions o = {}) {
  return storability(req, res, o, kNow);
}

std::string_view why(const Request& req, const Response& res, FreshnessOptions o = {}) {
  StoreDecision d = decide(req, res, o);
  return d.store ? std::string_view("stored") : d.reason;
}

TEST(Storability, OnlyGetAndHead) {
  EXPECT_EQ(why(get("/"), respond(200)), "stored");
  EXPECT_EQ(why(make_request("HEAD", "/"), respond(200)), "stored");
  for (const char* m : {"POST", "PUT", "PATCH", "DELETE", "OPTIONS"}) {
    EXPECT_EQ(why(make_request(m, "/"), respond(200, {{"Cache-Control", "max-age=60"}})), "method")
        << m;
  }
}

TEST(Storability, NeverFiveHundredsNorIncompleteOrNotModified) {
  for (int s : {500, 502, 503, 504, 501, 206, 304, 101, 99, 600}) {
    EXPECT_EQ(why(get("/"), respond(s, {{"Cache-Control", "max-age=60"}})), "status") << s;
  }
}

TEST(Storability, EachProhibitionBothWays) {
  struct Case {
    std::pair<std::string, std::string> header;
    std::string_view reason;
  };
  const std::vector<Case> cases = {
      {{"Cache-Control", "no-store"}, "no-store"},
      {{"Cache-Control", "max-age=60, NO-STORE"}, "no-store"},
      {{"Cache-Control", "private"}, "private"},
      {{"Cache-Control", "private=\"Set-Cookie\", max-age=60"}, "private"},
      {{"Cache-Control", "no-cache"}, "no-cache"},
      {{"Cache-Control", "no-cache=\"Set-Cookie\", max-age=60"}, "no-cache"},
      {{"Set-Cookie", "sessionid=abc; HttpOnly"}, "set-cookie"},
      {{"Vary", "*"}, "vary-star"},
      {{"Vary", "Accept-Encoding, *"}, "vary-star"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(why(get("/"), respond(200, {c.header})), c.reason) << c.header.second;
    // The same response without that field is stored.
    EXPECT_EQ(why(get("/"), respond(200)), "stored");
  }
  // Django's quirks fixed even with a cache_page timeout.
  FreshnessOptions page{.page_timeout = seconds(60)};
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "no-store"}}), page), "no-store");
  EXPECT_EQ(why(get("/"), respond(200, {{"Set-Cookie", "a=1"}, {"Vary", "Cookie"}}), page),
            "set-cookie");
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "public"}, {"Vary", "Cookie"}}), page),
            "stored");
}

TEST(Storability, AuthorizationNeedsPublicOrSharedMaxAge) {
  Request auth = get("/", {{"Authorization", "Bearer x"}});
  EXPECT_EQ(why(auth, respond(200)), "authorization");
  EXPECT_EQ(why(auth, respond(200, {{"Cache-Control", "max-age=60"}})), "authorization");
  EXPECT_EQ(why(auth, respond(200, {{"Cache-Control", "must-revalidate, max-age=60"}})),
            "authorization");  // stricter than RFC 9111 §3.5 on purpose
  EXPECT_EQ(why(auth, respond(200, {{"Cache-Control", "public"}})), "stored");
  EXPECT_EQ(why(auth, respond(200, {{"Cache-Control", "s-maxage=60"}})), "stored");
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "max-age=60"}})), "stored");

  EXPECT_TRUE(authorization_allows(get("/"), respond(200)));
  EXPECT_FALSE(authorization_allows(auth, respond(200)));
  EXPECT_TRUE(authorization_allows(auth, respond(200, {{"Cache-Control", "public"}})));
}

TEST(Storability, ZeroLifetimeIsNotStoredEvenWithAPageTimeout) {
  FreshnessOptions page{.page_timeout = seconds(60)};
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "max-age=0"}})), "zero-lifetime");
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "max-age=0"}}), page), "zero-lifetime");
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "max-age=bogus"}})), "zero-lifetime");
  EXPECT_EQ(why(get("/"), respond(200, {{"Expires", "0"}})), "zero-lifetime");
  EXPECT_EQ(why(get("/"), respond(200, {{"Expires", format_http_date(kNow - seconds(1))}})),
            "zero-lifetime");
  // s-maxage governs a shared cache, whatever max-age says to browsers.
  EXPECT_EQ(why(get("/"), respond(200, {{"Cache-Control", "max-age=0, s-maxage=30"}})), "stored");
  EXPECT_EQ(why(get("/"), respond(200), {.page_timeout = seconds(0)}), "zero-lifetime");
  EXPECT_EQ(why(get("/"), respond(200), {.default_timeout = seconds(0)}), "zero-lifetime");
}

TEST(Storability, OtherStatusesNeedExplicitFreshness) {
  FreshnessOptions page{.page_timeout = seconds(60)};
  for (int s : {203, 204, 300, 301, 308, 404, 405, 410, 414}) {
    EXPECT_EQ(why(get("/"), respond(s)), "no-freshness") << s;
    EXPECT_EQ(why(get("/"), respond(s), page), "stored") << s;
    EXPECT_EQ(why(get("/"), respond(s, {{"Cache-Control", "max-age=5"}})), "stored") << s;
  }
  for (int s : {201, 302, 303, 307, 400, 401, 403, 409, 429}) {
    EXPECT_EQ(why(get("/"), respond(s)), "no-freshness") << s;
    EXPECT_EQ(why(get("/"), respond(s), page), "no-freshness") << s;
    EXPECT_EQ(why(get("/"), respond(s, {{"Cache-Control", "max-age=5"}})), "stored") << s;
  }
}

TEST(Freshness, Precedence) {
  auto life = [](const Response& r, FreshnessOptions o = {}) {
    StoreDecision d = storability(get("/"), r, o, kNow);
    EXPECT_TRUE(d.store) << d.reason;
    return d.lifetime;
  };
  std::string in_100s = format_http_date(kNow + seconds(100));
  std::string date = format_http_date(kNow - seconds(20));
  // page timeout > s-maxage > max-age > Expires − Date > Expires − now > default.
  EXPECT_EQ(life(respond(200, {{"Cache-Control", "max-age=30, s-maxage=40"}, {"Expires", in_100s}}),
                 {.page_timeout = seconds(7)}),
            seconds(7));
  EXPECT_EQ(
      life(respond(200, {{"Cache-Control", "max-age=30, s-maxage=40"}, {"Expires", in_100s}})),
      seconds(40));
  EXPECT_EQ(life(respond(200, {{"Cache-Control", "max-age=30"}, {"Expires", in_100s}})),
            seconds(30));
  EXPECT_EQ(life(respond(200, {{"Expires", in_100s}, {"Date", date}})), seconds(120));
  EXPECT_EQ(life(respond(200, {{"Expires", in_100s}})), seconds(100));
  EXPECT_EQ(life(respond(200), {.default_timeout = seconds(321)}), seconds(321));
  // Repeated directives: the first counts; an absurd value saturates at 2^31 s.
  EXPECT_EQ(life(respond(200, {{"Cache-Control", "max-age=10, max-age=99"}})), seconds(10));
  EXPECT_EQ(life(respond(200, {{"Cache-Control", "max-age=99999999999999999999999"}})),
            seconds(std::int64_t{1} << 31));
}

TEST(Methods, Classification) {
  EXPECT_TRUE(is_cacheable_method("GET"));
  EXPECT_TRUE(is_cacheable_method("HEAD"));
  EXPECT_FALSE(is_cacheable_method("get"));  // methods are case-sensitive
  EXPECT_TRUE(is_unsafe_method("DELETE"));
  EXPECT_FALSE(is_unsafe_method("GET"));
  EXPECT_TRUE(is_heuristically_cacheable(404));
  EXPECT_FALSE(is_heuristically_cacheable(302));
}

}  // namespace
}  // namespace cachekit::http
