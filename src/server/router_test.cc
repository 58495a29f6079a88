#include "cachekit/server/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

namespace cachekit::server {
namespace {

using Kind = Resolution::Kind;

http::Request make_request(std::string method, std::string path, std::string query = "") {
  http::Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.query = std::move(query);
  return r;
}

http::Handler answer(std::string text) {
  return [text](http::Request&) { return http::Response::text(text); };
}

TEST(Router, MatchesLiteralRoutesAndRunsTheHandler) {
  Router router;
  router.get("/a/", answer("a")).get("/b/", answer("b"));
  auto r = make_request("GET", "/b/");
  EXPECT_EQ(router.handle(r).body, "b");
}

TEST(Router, FillsDecodedPathParameters) {
  Router router;
  router.get("/p/{id}/{slug}/", answer("p"));
  auto r = make_request("GET", "/p/12/a%2Fb/");
  auto resolution = router.resolve(r);
  EXPECT_EQ(resolution.kind, Kind::kFound);
  EXPECT_EQ(r.path_params.at("id"), "12");
  EXPECT_EQ(r.path_params.at("slug"), "a/b") << "an encoded slash stays inside its segment";
}

TEST(Router, KeepsPlusAndBrokenEscapesInPathParameters) {
  Router router;
  router.get("/p/{id}/{slug}/", answer("p"));
  auto r = make_request("GET", "/p/100%25/a+b%zz%4/");
  ASSERT_EQ(router.resolve(r).kind, Kind::kFound);
  EXPECT_EQ(r.path_params.at("id"), "100%");
  EXPECT_EQ(r.path_params.at("slug"), "a+b%zz%4") << "'+' is the query's rule; %zz stays literal";
}

TEST(Router, PrefersLiteralRoutesOverParameterisedOnes) {
  Router router;
  router.get("/p/{id}/", answer("param")).get("/p/new/", answer("literal"));
  auto r = make_request("GET", "/p/new/");
  EXPECT_EQ(router.handle(r).body, "literal");
  auto other = make_request("GET", "/p/3/");
  EXPECT_EQ(router.handle(other).body, "param");
}

TEST(Router, TrailingSlashIsSignificant) {
  Router router(RouterOptions{.append_slash = false});
  router.get("/a/{x}/", answer("a"));
  auto r = make_request("GET", "/a/1");
  EXPECT_EQ(router.resolve(r).kind, Kind::kNotFound);
}

TEST(Router, RedirectsToTheSlashedPathKeepingTheQuery) {
  Router router;
  router.get("/a/{x}/", answer("a"));
  auto r = make_request("GET", "/a/1", "q=1&b=2");
  auto resolution = router.resolve(r);
  EXPECT_EQ(resolution.kind, Kind::kRedirect);
  EXPECT_EQ(resolution.location, "/a/1/?q=1&b=2");
  auto response = Router::own_answer(resolution);
  EXPECT_EQ(response.status, 301);
  EXPECT_EQ(response.headers.get("Location"), "/a/1/?q=1&b=2");
}

TEST(Router, DoesNotRedirectUnsafeMethodsOrWhenDisabled) {
  Router router;
  router.post("/a/", answer("a"));
  auto post = make_request("POST", "/a");
  EXPECT_EQ(router.resolve(post).kind, Kind::kNotFound);
  Router strict(RouterOptions{.append_slash = false});
  strict.get("/a/", answer("a"));
  auto get = make_request("GET", "/a");
  EXPECT_EQ(strict.resolve(get).kind, Kind::kNotFound);
}

TEST(Router, AnswersMethodNotAllowedWithAllow) {
  Router router;
  router.get("/a/", answer("a")).route({"put", "DELETE", "PURGE"}, "/a/", answer("w"));
  auto r = make_request("POST", "/a/");
  auto resolution = router.resolve(r);
  EXPECT_EQ(resolution.kind, Kind::kMethodNotAllowed);
  EXPECT_EQ(resolution.allow, "GET, HEAD, PUT, DELETE, OPTIONS, PURGE");
  auto response = router.respond(resolution, r);
  EXPECT_EQ(response.status, 405);
  EXPECT_EQ(response.headers.get("Allow"), "GET, HEAD, PUT, DELETE, OPTIONS, PURGE");
}

TEST(Router, HeadFallsBackToGetAndOptionsIsAnswered) {
  Router router;
  router.get("/a/", answer("a"));
  auto head = make_request("HEAD", "/a/");
  EXPECT_EQ(router.resolve(head).kind, Kind::kFound);
  auto options = make_request("OPTIONS", "/a/");
  auto resolution = router.resolve(options);
  EXPECT_EQ(resolution.kind, Kind::kOptions);
  EXPECT_EQ(router.respond(resolution, options).headers.get("Allow"), "GET, HEAD, OPTIONS");
}

TEST(Router, RejectsBadRegistrations) {
  Router router;
  EXPECT_THROW(router.get("no-slash", answer("x")), std::invalid_argument);
  EXPECT_THROW(router.get("/a/{x/", answer("x")), std::invalid_argument);
  EXPECT_THROW(router.get("/a/x{y}/", answer("x")), std::invalid_argument);
  router.get("/a/", answer("x"));
  EXPECT_THROW(router.route({"get"}, "/a/", answer("y")), std::invalid_argument);
  EXPECT_THROW(router.get("/b/", http::Handler{}), std::invalid_argument);
}

TEST(Router, RunsMiddlewareOutermostFirstAroundEveryAnswer) {
  Router router;
  std::string order;
  auto mark = [&order](std::string name) {
    return [&order, name](http::Request& r, const http::Next& next) {
      order += name + ">";
      auto response = next(r);
      order += "<" + name;
      return response;
    };
  };
  router.use(mark("1")).use(mark("2"));
  router.get("/a/", [&order](http::Request&) {
    order += "h";
    return http::Response::text("a");
  });
  auto r = make_request("GET", "/a/");
  EXPECT_EQ(router.handle(r).body, "a");
  EXPECT_EQ(order, "1>2>h<2<1");
  order.clear();
  auto missing = make_request("GET", "/zzz/");
  EXPECT_EQ(router.handle(missing).status, 404);
  EXPECT_EQ(order, "1>2><2<1");
}

TEST(Router, MiddlewareCanShortCircuit) {
  Router router;
  router.use(
      [](http::Request&, const http::Next&) { return http::Response::text("blocked", 403); });
  bool called = false;
  router.get("/a/", [&](http::Request&) {
    called = true;
    return http::Response::text("a");
  });
  auto r = make_request("GET", "/a/");
  EXPECT_EQ(router.handle(r).status, 403);
  EXPECT_FALSE(called);
}

TEST(Router, ReportsRoutePatternsForMetrics) {
  Router router;
  router.get("/a/", answer("a")).post("/a/", answer("a")).get("/b/{x}/", answer("b"));
  EXPECT_EQ(router.route_count(), 2U);
  EXPECT_EQ(router.route_pattern(0), "/a/");
  EXPECT_EQ(router.route_pattern(1), "/b/{x}/");
  EXPECT_EQ(router.route_pattern(2), "unmatched");
  auto r = make_request("GET", "/b/1/");
  EXPECT_EQ(router.resolve(r).route, 1U);
}

class ReadOnly : public View {
 public:
  http::Response get(http::Request&) override { return http::Response::text("read"); }
};
class ReadWrite : public ReadOnly {
 public:
  http::Response delete_(http::Request&) override { return http::Response::text("gone"); }
};

TEST(View, DetectsOverriddenMethodsThroughIntermediateClasses) {
  static_assert(overridden_methods<ReadOnly>() == kViewGet);
  static_assert(overridden_methods<ReadWrite>() == (kViewGet | kViewDelete));
  static_assert(overridden_methods<View>() == 0);
}

TEST(View, RegistersOnlyTheOverriddenMethods) {
  Router router;
  auto view = std::make_shared<ReadWrite>();
  router.view("/v/", view);
  auto get = make_request("GET", "/v/");
  EXPECT_EQ(router.handle(get).body, "read");
  auto del = make_request("DELETE", "/v/");
  EXPECT_EQ(router.handle(del).body, "gone");
  auto put = make_request("PUT", "/v/");
  auto refused = router.handle(put);
  EXPECT_EQ(refused.status, 405);
  EXPECT_EQ(refused.headers.get("Allow"), "GET, HEAD, DELETE, OPTIONS");
  // Called directly, a default member gives the same answer.
  auto direct = make_request("PUT", "/v/");
  EXPECT_EQ(view->put(direct).headers.get("Allow"), "GET, HEAD, DELETE, OPTIONS");
}

TEST(Router, FallbackTakesEveryUnmatchedRequestWhateverItsMethod) {
  Router router;
  router.get("/a/", answer("a")).fallback(answer("forwarded"));
  for (const char* method : {"GET", "PUT", "OPTIONS", "PURGE"}) {
    auto r = make_request(method, "/elsewhere");  // no 405, no OPTIONS, no APPEND_SLASH 301
    Resolution resolution = router.resolve(r);
    EXPECT_EQ(resolution.kind, Kind::kFound) << method;
    EXPECT_EQ(router.handle(r).body, "forwarded") << method;
  }
  auto routed = make_request("GET", "/a/");
  EXPECT_EQ(router.handle(routed).body, "a");
  EXPECT_THROW(router.fallback(answer("again")), std::invalid_argument);
}

}  // namespace
}  // namespace cachekit::server
