// Serving stale pages (RFC 5861) on a locmem store with a ManualClock: stale-if-error in place
// of a 5xx or a throwing handler, stale-while-revalidate with one background refresh, the
// windows from options and from the response, and the directives that forbid stale.

#include <gtest/gtest.h>

#include <atomic>
#include <latch>
#include <stdexcept>
#include <thread>

#include "cachekit/http/page_cache.h"
#include "cachekit/server/metrics.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::seconds;
using testing::ClockedCache;
using testing::get;

class StalePages : public ::testing::Test {
 protected:
  // A page cache with a 10 s page timeout and the given windows.
  PageCache& page(seconds swr, seconds sie) {
    pc_ = std::make_unique<PageCache>(PageCacheOptions{.cache = c_.cache.get(),
                                                       .page_timeout = seconds(10),
                                                       .clock = &c_.clock,
                                                       .stale_while_revalidate = swr,
                                                       .stale_if_error = sie});
    return *pc_;
  }
  Response serve(Request r = get("/hello/")) {
    return pc_->serve(r, [this](Request&) {
      ++calls_;
      if (throws_) throw std::runtime_error("upstream gone");
      Response response = Response::text(body_, status_);
      if (!cache_control_.empty()) response.headers.set("Cache-Control", cache_control_);
      return response;
    });
  }
  static std::string status_of(const Response& r) {
    return std::string(r.headers.get("Cache-Status").value_or(""));
  }

  ClockedCache c_;
  std::unique_ptr<PageCache> pc_;
  std::atomic<int> calls_{0};
  std::string body_ = "v1";
  int status_ = 200;
  bool throws_ = false;
  std::string cache_control_;
};

TEST_F(StalePages, StaleIfErrorReplacesA502InsideItsWindowThenLetsItThrough) {
  page(seconds(0), seconds(30));
  EXPECT_EQ(serve().body, "v1");
  c_.clock.advance(seconds(15));
  status_ = 502;
  body_ = "bad gateway";
  Response stale = serve();
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, "v1");
  EXPECT_EQ(status_of(stale), "cachekit; fwd=stale; fwd-status=502; detail=stale-if-error; ttl=-5");
  ASSERT_TRUE(stale.cache_status);
  EXPECT_EQ(stale.cache_status->stale, CacheStatus::Stale::kIfError);
  EXPECT_EQ(stale.headers.get("Age"), "15");
  EXPECT_EQ(pc_->stats().stale_if_error, 1u);
  c_.clock.advance(seconds(25));  // 40 s: past fresh_until + 30 s
  Response error = serve();
  EXPECT_EQ(error.status, 502);
  EXPECT_EQ(error.body, "bad gateway");
  EXPECT_EQ(calls_, 3);
}

TEST_F(StalePages, StaleIfErrorReplacesAThrowingHandler) {
  page(seconds(0), seconds(30));
  serve();
  c_.clock.advance(seconds(11));
  throws_ = true;
  Response stale = serve();
  EXPECT_EQ(stale.body, "v1");
  EXPECT_EQ(status_of(stale), "cachekit; fwd=stale; detail=stale-if-error; ttl=-1");
  c_.clock.advance(seconds(30));
  EXPECT_THROW(serve(), std::runtime_error);
}

TEST_F(StalePages, ResponseDirectiveOpensTheWindowWithoutAnOption) {
  page(seconds(0), seconds(0));
  cache_control_ = "max-age=10, stale-if-error=20";
  serve();
  c_.clock.advance(seconds(25));
  status_ = 503;
  EXPECT_EQ(serve().status, 200);
  c_.clock.advance(seconds(10));  // 35 s: past 10 + 20
  EXPECT_EQ(serve().status, 503);
}

TEST_F(StalePages, RevalidationDirectivesAreNeverServedStale) {
  for (std::string directive : {"max-age=10, must-revalidate", "max-age=10, proxy-revalidate",
                                "s-maxage=10", "max-age=10, must-revalidate, stale-if-error=60"}) {
    SCOPED_TRACE(directive);
    c_.cache->clear();
    page(seconds(30), seconds(30));
    status_ = 200;
    cache_control_ = directive;
    EXPECT_EQ(serve().status, 200);
    c_.clock.advance(seconds(15));
    status_ = 502;
    Response r = serve();
    EXPECT_EQ(r.status, 502);
    EXPECT_EQ(pc_->stats().stale_if_error + pc_->stats().stale_while_revalidate, 0u);
  }
}

TEST_F(StalePages, RequestNoCacheOrMaxAgeGetsTheErrorNotStale) {
  page(seconds(30), seconds(30));
  serve();
  c_.clock.advance(seconds(15));
  status_ = 502;
  EXPECT_EQ(serve(get("/hello/", {{"Cache-Control", "no-cache"}})).status, 502);
  EXPECT_EQ(serve(get("/hello/", {{"Cache-Control", "max-age=0"}})).status, 502);
  EXPECT_EQ(serve(get("/hello/", {{"Pragma", "no-cache"}})).status, 502);
  // max-stale says the client takes stale.
  EXPECT_EQ(serve(get("/hello/", {{"Cache-Control", "max-age=0, max-stale"}})).status, 200);
}

TEST_F(StalePages, StaleWhileRevalidateAnswersAtOnceAndRefreshesOnceInTheBackground) {
  page(seconds(30), seconds(0));
  serve();
  c_.clock.advance(seconds(12));
  std::latch refresh_started(1), release(1);
  body_ = "v2";
  std::atomic<int> refresh_calls{0};
  Handler blocking = [&](Request&) {
    if (refresh_calls++ == 0) refresh_started.count_down();
    release.wait();  // the refresh holds here while readers are answered
    return Response::text("v2");
  };
  for (int i = 0; i < 5; ++i) {
    Request r = get("/hello/");
    Response stale = pc_->serve(r, blocking);
    EXPECT_EQ(stale.body, "v1");
    EXPECT_EQ(status_of(stale), "cachekit; hit; detail=stale-while-revalidate; ttl=-2");
  }
  refresh_started.wait();
  EXPECT_EQ(pc_->refreshes_pending(), 1u);
  release.count_down();
  pc_.reset();  // joins the refresh
  EXPECT_EQ(refresh_calls, 1);
  page(seconds(30), seconds(0));
  Response fresh = serve();
  EXPECT_EQ(fresh.body, "v2");
  EXPECT_EQ(status_of(fresh), "cachekit; hit; ttl=10");
  EXPECT_EQ(calls_, 1);  // only the first miss reached the counting handler
}

TEST_F(StalePages, FailedRefreshKeepsServingStaleUntilItsWindowEnds) {
  page(seconds(20), seconds(0));
  serve();
  c_.clock.advance(seconds(15));
  status_ = 502;
  EXPECT_EQ(serve().body, "v1");  // stale, and a refresh that will answer 502
  pc_.reset();                    // joins it
  page(seconds(20), seconds(0));
  EXPECT_EQ(serve().body, "v1");  // still the stale page
  pc_.reset();
  page(seconds(20), seconds(0));
  c_.clock.advance(seconds(20));  // 35 s: past 10 + 20
  EXPECT_EQ(serve().status, 502);
}

TEST_F(StalePages, StoreKeepsThePageThroughTheLongerWindow) {
  page(seconds(5), seconds(50));
  serve();
  c_.clock.advance(seconds(59));
  status_ = 500;
  EXPECT_EQ(serve().status, 200);  // the store still had it at 59 s
}

TEST_F(StalePages, MetricsCountStalePagesByReason) {
  page(seconds(5), seconds(30));
  serve();
  c_.clock.advance(seconds(12));
  server::Metrics metrics({});
  Response revalidating = serve();  // stale-while-revalidate
  ASSERT_TRUE(revalidating.cache_status);
  metrics.record_cache_status("default", *revalidating.cache_status);
  pc_.reset();                    // joins the refresh, which stores a fresh page
  c_.clock.advance(seconds(17));  // the refreshed page: past its swr window, inside its sie
  page(seconds(5), seconds(30));
  status_ = 502;
  Response error = serve();  // the refreshed page in place of the 502
  ASSERT_TRUE(error.cache_status);
  metrics.record_cache_status("default", *error.cache_status);
  std::string text = metrics.render();
  EXPECT_NE(text.find("cachekit_page_cache_requests_total{cache=\"default\",result=\"stale\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find("cachekit_page_cache_requests_total{cache=\"default\",result=\"stale_error\"} 1"),
      std::string::npos)
      << text;
  EXPECT_EQ(metrics.cache_outcomes("default", server::CacheOutcome::kHit), 0U);
}

// The middleware's next may not be called after the request: one request refreshes the page
// itself while the others get the stale page at once, and nothing runs in the background.
TEST_F(StalePages, MiddlewareRefreshesInOneRequestWhileOthersGetStale) {
  Middleware middleware = cache_middleware({.cache = c_.cache.get(),
                                            .page_timeout = seconds(10),
                                            .clock = &c_.clock,
                                            .stale_while_revalidate = seconds(30)});
  std::latch refreshing(1), release(1);
  std::atomic<int> calls{0};
  Next next = [&](Request&) {
    if (calls++ == 1) {  // the refresh
      refreshing.count_down();
      release.wait();
      return Response::text("v2");
    }
    return Response::text("v1");
  };
  Request first = get("/mw/");
  EXPECT_EQ(middleware(first, next).body, "v1");
  c_.clock.advance(seconds(12));
  Response refreshed;
  std::thread refresher([&] {
    Request r = get("/mw/");
    refreshed = middleware(r, next);
  });
  refreshing.wait();
  Request other = get("/mw/");
  Response stale = middleware(other, next);
  EXPECT_EQ(stale.body, "v1");
  EXPECT_EQ(status_of(stale), "cachekit; hit; detail=stale-while-revalidate; ttl=-2");
  release.count_down();
  refresher.join();
  EXPECT_EQ(refreshed.body, "v2");
  EXPECT_NE(status_of(refreshed).find("fwd=stale; stored"), std::string::npos)
      << status_of(refreshed);
  Request after = get("/mw/");
  EXPECT_EQ(middleware(after, next).body, "v2");
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace cachekit::http
