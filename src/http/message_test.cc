// Headers, Request and Response helpers, and HTTP dates.

#include "cachekit/http/message.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>

#include "cachekit/http/cache_control.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;

TEST(Headers, NamesCompareCaseInsensitively) {
  Headers h;
  h.add("Content-Type", "text/html");
  EXPECT_EQ(h.get("content-type"), "text/html");
  EXPECT_TRUE(h.contains("CONTENT-TYPE"));
  EXPECT_FALSE(h.contains("Content-Length"));
  EXPECT_EQ(h.get("Content-Length"), std::nullopt);
}

TEST(Headers, SetReplacesEveryFieldKeepingTheFirstPosition) {
  Headers h;
  h.add("A", "1");
  h.add("Set-Cookie", "a=1");
  h.add("B", "2");
  h.add("set-cookie", "b=2");
  h.set("SET-COOKIE", "c=3");
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.fields()[1].first, "Set-Cookie");
  EXPECT_EQ(h.fields()[1].second, "c=3");
  EXPECT_EQ(h.get_all("Set-Cookie"), std::vector<std::string_view>{"c=3"});
}

TEST(Headers, AddKeepsRepeatsAndEraseCountsThem) {
  Headers h;
  h.add("Set-Cookie", "a=1");
  h.add("Set-Cookie", "b=2");
  EXPECT_EQ(h.get_all("set-cookie"), (std::vector<std::string_view>{"a=1", "b=2"}));
  EXPECT_EQ(h.erase("SET-COOKIE"), 2u);
  EXPECT_EQ(h.size(), 0u);
}

TEST(Request, QueryParamDecodesPlusAndPercent) {
  Request r;
  r.query = "q=hello+world%21&empty=&flag&x=%zz&a%20b=1";
  EXPECT_EQ(r.query_param("q"), "hello world!");
  EXPECT_EQ(r.query_param("empty"), "");
  EXPECT_EQ(r.query_param("flag"), "");
  EXPECT_EQ(r.query_param("x"), "%zz");  // a broken escape stays literal
  EXPECT_EQ(r.query_param("a b"), "1");
  EXPECT_EQ(r.query_param("missing"), std::nullopt);
}

TEST(Request, CookieReadsEveryCookieHeader) {
  Request r;
  r.headers.add("Cookie", "a=1; sessionid=abc");
  r.headers.add("Cookie", "theme=\"dark\"");
  EXPECT_EQ(r.cookie("sessionid"), "abc");
  EXPECT_EQ(r.cookie("theme"), "dark");
  EXPECT_EQ(r.cookie("b"), std::nullopt);
}

TEST(Request, ReadingTheCookieIsRecorded) {
  Request r;
  r.headers.add("Accept", "text/html");
  EXPECT_FALSE(r.cookies_read());
  for (const Headers::Field& field : r.headers) (void)field;  // iterating is not reading it
  (void)r.headers.get("Accept");
  EXPECT_FALSE(r.cookies_read());
  (void)r.cookie("sessionid");  // absent: the answer still depends on it
  EXPECT_TRUE(r.cookies_read());

  for (const auto& read : std::vector<std::function<void(const Request&)>>{
           [](const Request& q) { (void)q.headers.get("cookie"); },
           [](const Request& q) { (void)q.headers.get_all("Cookie"); },
           [](const Request& q) { (void)q.headers.contains("COOKIE"); }}) {
    Request q;
    q.headers.add("Cookie", "a=1");
    read(q);
    EXPECT_TRUE(q.cookies_read());
    Request copy = q;  // a copy handed down the chain keeps the mark
    EXPECT_TRUE(copy.cookies_read());
  }
}

TEST(Request, TargetAndAbsoluteUri) {
  Request r;
  r.headers.add("Host", "example.com:8000");
  r.path = "/a/b/";
  EXPECT_EQ(r.target(), "/a/b/");
  r.query = "x=1";
  EXPECT_EQ(r.target(), "/a/b/?x=1");
  EXPECT_EQ(r.absolute_uri(), "http://example.com:8000/a/b/?x=1");
}

TEST(Response, FactoriesSetTypeAndStatus) {
  Response t = Response::text("hi", 201);
  EXPECT_EQ(t.status, 201);
  EXPECT_EQ(t.headers.get("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(t.body, "hi");
  EXPECT_EQ(Response::html("<p>").headers.get("Content-Type"), "text/html; charset=utf-8");
  Response j = Response::json({{"a", 1}});
  EXPECT_EQ(j.body.view(), "{\"a\":1}");
  EXPECT_EQ(j.headers.get("Content-Type"), "application/json");
  Response r = Response::redirect("/next/", 301);
  EXPECT_EQ(r.status, 301);
  EXPECT_EQ(r.headers.get("Location"), "/next/");
}

TEST(HtmlEscape, EscapesTheFiveCharacters) {
  EXPECT_EQ(html_escape("<a href=\"x\">Tom & Jerry's</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#x27;s&lt;/a&gt;");
}

TEST(ReasonPhrase, KnownAndUnknown) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(404), "Not Found");
  EXPECT_EQ(reason_phrase(412), "Precondition Failed");
  EXPECT_EQ(reason_phrase(799), "");
}

TEST(HttpDate, FormatsImfFixdate) {
  TimePoint t{std::chrono::milliseconds(784111777123)};
  EXPECT_EQ(format_http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
}

TEST(HttpDate, ParsesTheThreeForms) {
  TimePoint expected{seconds(784111777)};
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), expected);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), expected);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994"), expected);
  EXPECT_EQ(parse_http_date("sun, 06 nov 1994 08:49:37 GMT"), expected);  // case-insensitive month
}

TEST(HttpDate, RejectsMalformedDates) {
  for (const char* bad : {"", "0", "-1", "Sun, 06 Nov 1994 08:49:37 UTC",
                          "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                          "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun, 6 Nov 1994 08:49:37 GMT"}) {
    EXPECT_EQ(parse_http_date(bad), std::nullopt) << bad;
  }
}

TEST(HttpDate, RoundTrips) {
  TimePoint t{seconds(1700000000)};
  EXPECT_EQ(parse_http_date(format_http_date(t)), t);
}

}  // namespace
}  // namespace cachekit::http
