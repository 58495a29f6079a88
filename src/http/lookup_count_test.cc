// How many backend reads each page-cache outcome costs: a miss is looked up once (also when
// the server's io thread looked first and handed its lookup on), a hit reads the header list
// and the page, a collapsed miss reads only what its own lookup read.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>

#include "cachekit/http/page_cache.h"
#include "support/backend_wrapper.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using testing::get;

class LookupCount : public ::testing::Test {
 protected:
  LookupCount() {
    counting_ = std::make_shared<testing::BackendWrapper>(store_.backend);
    CacheOptions options;
    options.clock = &store_.clock;
    cache_ = std::make_unique<Cache>(counting_, options);
    page_ = std::make_unique<PageCache>(
        PageCacheOptions{.cache = cache_.get(), .clock = &store_.clock});
  }
  // The get()s `serve` made.
  int gets_of(const std::function<void()>& serve) {
    int before = counting_->calls(testing::Op::kGet);
    serve();
    return counting_->calls(testing::Op::kGet) - before;
  }

  testing::ClockedCache store_;
  std::shared_ptr<testing::BackendWrapper> counting_;
  std::unique_ptr<Cache> cache_;
  std::unique_ptr<PageCache> page_;
  Handler hello_ = [](Request&) { return Response::text("hello"); };
};

TEST_F(LookupCount, AMissReadsTheHeaderListOnce) {
  Request r = get("/p/");
  EXPECT_EQ(gets_of([&] { page_->serve(r, hello_); }), 1);
}

TEST_F(LookupCount, AMissLookedUpByFetchIsNotLookedUpAgain) {
  Request r = get("/p/");
  EXPECT_EQ(gets_of([&] { EXPECT_FALSE(page_->fetch_and_keep(r)); }), 1);
  Response response;
  EXPECT_EQ(gets_of([&] { response = page_->serve(r, hello_); }), 0);
  EXPECT_EQ(response.headers.get("Cache-Status"), "cachekit; fwd=uri-miss; stored; ttl=600");
}

TEST_F(LookupCount, AHitReadsTheHeaderListAndThePage) {
  Request first = get("/p/");
  page_->serve(first, hello_);
  Request again = get("/p/");
  Response response;
  EXPECT_EQ(gets_of([&] { response = page_->serve(again, hello_); }), 2);
  EXPECT_EQ(response.cache_status, CacheStatus::hit(600));
}

TEST_F(LookupCount, AVariantMissReadsTheHeaderListAgainBeforeStoring) {
  Handler by_language = [](Request&) {
    Response response = Response::text("hello");
    response.headers.set("Vary", "Accept-Language");
    return response;
  };
  Request english = get("/p/", {{"Accept-Language", "en"}});
  page_->serve(english, by_language);
  Request french = get("/p/", {{"Accept-Language", "fr"}});
  Response response;
  // The list and the page, then the list once more before storing: an invalidation while the
  // handler ran deleted it, and writing the read epoch back would revive the old variants.
  EXPECT_EQ(gets_of([&] { response = page_->serve(french, by_language); }), 3);
  EXPECT_EQ(response.headers.get("Cache-Status"), "cachekit; fwd=miss; stored; ttl=600");
}

TEST_F(LookupCount, ConcurrentCollapsedMissReadsOnlyItsOwnLookup) {
  std::latch leader_in_handler(1), release(1);
  Handler slow = [&](Request&) {
    leader_in_handler.count_down();
    release.wait();
    return Response::text("slow");
  };
  Response leader_response, follower_response;
  int before = counting_->calls(testing::Op::kGet);
  std::thread leader([&] {
    Request r = get("/p/");
    leader_response = page_->serve(r, slow);
  });
  leader_in_handler.wait();
  std::thread follower([&] {
    Request r = get("/p/");
    follower_response = page_->serve(r, slow);
  });
  // The follower is inside the coalescer's wait (a condition polled with a deadline).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (page_->coalesced_waiters() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_EQ(page_->coalesced_waiters(), 1U);  // (release the leader either way)
  release.count_down();
  leader.join();
  follower.join();
  EXPECT_EQ(leader_response.headers.get("Cache-Status"), "cachekit; fwd=uri-miss; stored; ttl=600");
  EXPECT_EQ(follower_response.headers.get("Cache-Status"), "cachekit; fwd=uri-miss; collapsed");
  EXPECT_EQ(counting_->calls(testing::Op::kGet) - before, 2);  // one header-list read each
}

}  // namespace
}  // namespace cachekit::http
