// Coalescing of concurrent misses. These tests' names contain "Concurrent" so that the TSan
// build runs them. Nothing sleeps: the leader's handler holds until the page cache reports
// the other requests parked on its flight (or another thread has called the handler), so every
// follower arrives while the leader is still working, on any machine.

#include <gtest/gtest.h>

#include <latch>
#include <mutex>
#include <thread>

#include "cachekit/http/cache_control.h"
#include "cachekit/http/page_cache.h"
#include "support/http_test_util.h"

namespace cachekit::http {
namespace {

using std::chrono::milliseconds;
using testing::ClockedCache;
using testing::get;

constexpr int kThreads = 8;

// Runs `make_request(i)` through `page` from kThreads threads released together.
std::vector<Response> race(const PageCache& page, const Handler& handler,
                           const std::function<Request(int)>& make_request) {
  std::vector<Response> responses(kThreads);
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      Request r = make_request(i);
      start.arrive_and_wait();
      try {
        responses[static_cast<std::size_t>(i)] = page.serve(r, handler);
      } catch (const std::exception&) {
        responses[static_cast<std::size_t>(i)].status = -1;  // the thrown-at leader
      }
    });
  }
  for (auto& t : threads) t.join();
  return responses;
}

// Holds the calling handler until `n` requests wait on its flight; false after 10 s (a request
// that should have waited went to the handler instead). Polling with a deadline, not a sleep.
bool wait_for_waiters(const PageCache& page, std::size_t n) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (page.coalesced_waiters() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

std::string cache_status(const Response& r) {
  return std::string(r.headers.get("Cache-Status").value_or(""));
}

TEST(Coalescing, ConcurrentMissesCallTheHandlerOnce) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<int> calls{0};
  Handler slow = [&](Request&) {
    ++calls;
    EXPECT_TRUE(wait_for_waiters(page, kThreads - 1));
    return Response::text(std::string(10000, 'b'));
  };
  auto responses = race(page, slow, [](int) { return get("/hot/"); });
  EXPECT_EQ(calls.load(), 1);
  int collapsed = 0;
  for (const Response& r : responses) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body.view(), std::string(10000, 'b'));
    if (cache_status(r) == "cachekit; fwd=uri-miss; collapsed") ++collapsed;
  }
  EXPECT_EQ(collapsed, kThreads - 1);  // every waiter shared the leader's response
  // The waiters share the leader's body bytes rather than copying them.
  const char* body = nullptr;
  for (const Response& r : responses) {
    if (cache_status(r) != "cachekit; fwd=uri-miss; collapsed") continue;
    if (body == nullptr) body = r.body.data();
    EXPECT_EQ(r.body.data(), body);
  }
}

TEST(Coalescing, ConcurrentPrivateResponsesAreNeverShared) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<int> calls{0};
  Handler per_user = [&](Request& r) {
    if (calls++ == 0) {
      EXPECT_TRUE(wait_for_waiters(page, kThreads - 1));
    }
    Response res = Response::text("account of " + r.cookie("user").value_or("?"));
    res.headers.set("Cache-Control", "private");
    return res;
  };
  auto responses = race(page, per_user, [](int i) {
    return get("/account/", {{"Cookie", "user=u" + std::to_string(i)}});
  });
  EXPECT_EQ(calls.load(), kThreads);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(responses[static_cast<std::size_t>(i)].body.view(),
              "account of u" + std::to_string(i));
    EXPECT_EQ(cache_status(responses[static_cast<std::size_t>(i)]),
              "cachekit; fwd=uri-miss; detail=private");
  }
}

TEST(Coalescing, ConcurrentSetCookieAndAuthorizationResponsesAreNeverShared) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<int> calls{0};
  std::atomic<int> anonymous_calls{0};
  Handler h = [&](Request& r) {
    ++calls;
    std::string who(r.headers.get("Authorization").value_or("anon"));
    // The first anonymous leader holds until the other anonymous requests wait on it.
    if (who == "anon" && anonymous_calls++ == 0) {
      EXPECT_TRUE(wait_for_waiters(page, kThreads / 2 - 1));
    }
    Response res = Response::text("for " + who);
    if (who == "anon") res.headers.add("Set-Cookie", "csrftoken=" + std::to_string(calls.load()));
    return res;
  };
  auto responses = race(page, h, [](int i) {
    if (i % 2 == 0) return get("/mixed/");
    return get("/mixed/", {{"Authorization", "Bearer t" + std::to_string(i)}});
  });
  EXPECT_EQ(calls.load(), kThreads);
  for (int i = 0; i < kThreads; ++i) {
    std::string who = i % 2 == 0 ? "anon" : "Bearer t" + std::to_string(i);
    EXPECT_EQ(responses[static_cast<std::size_t>(i)].body.view(), "for " + who);
  }
}

TEST(Coalescing, ConcurrentVaryMismatchRunsTheHandlerForOtherVariants) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<int> calls{0};
  Handler h = [&](Request& r) {
    if (calls++ == 0) {
      EXPECT_TRUE(wait_for_waiters(page, kThreads - 1));
    }
    Response res =
        Response::text("lang " + std::string(r.headers.get("Accept-Language").value_or("")));
    patch_vary_headers(res, {"Accept-Language"});
    return res;
  };
  auto responses = race(page, h, [](int i) {
    return get("/intl/", {{"Accept-Language", i % 2 == 0 ? "en" : "fr"}});
  });
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(responses[static_cast<std::size_t>(i)].body.view(),
              i % 2 == 0 ? "lang en" : "lang fr");
  }
}

TEST(Coalescing, ConcurrentWaitersRunTheHandlerWhenTheLeaderThrows) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<int> calls{0};
  Handler h = [&](Request&) {
    if (calls++ == 0) {
      EXPECT_TRUE(wait_for_waiters(page, kThreads - 1));
      throw std::runtime_error("first call fails");
    }
    return Response::text("recovered");
  };
  auto responses = race(page, h, [](int) { return get("/flaky/"); });
  int thrown = 0;
  for (const Response& r : responses) {
    if (r.status == -1) {
      ++thrown;
    } else {
      EXPECT_EQ(r.body, "recovered");
    }
  }
  EXPECT_EQ(thrown, 1);
  EXPECT_GE(calls.load(), 2);
}

TEST(Coalescing, ConcurrentWaitIsBoundedByCoalesceWait) {
  ClockedCache store;
  PageCache page(
      {.cache = store.cache.get(), .coalesce_wait = milliseconds(50), .clock = &store.clock});
  std::atomic<int> calls{0};
  // The leader holds until a waiter has given up on it and called the handler itself; were the
  // wait unbounded, nobody would, and the leader would let go only at the 10 s deadline.
  Handler h = [&calls](Request&) {
    if (calls++ == 0) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (calls.load() < 2 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    }
    return Response::text("x");
  };
  auto responses = race(page, h, [](int) { return get("/slow/"); });
  for (const Response& r : responses) EXPECT_EQ(r.body, "x");
  EXPECT_GE(calls.load(), 2);  // waiters gave up on the slow leader and ran the handler
}

// A private answer to a request with credentials (Authorization, or a session Cookie) used to
// mark the whole URI hit-for-pass: for 30 s nobody's misses coalesced, so one logged-in visit
// let an anonymous burst through to the handler. The pass is now scoped to the class of
// request that caused it. Deterministic: the anonymous leader's handler holds until every
// follower is seen waiting (or, with the bug, has called the handler itself).
TEST(Coalescing, ConcurrentAnonymousMissesStillCoalesceAfterACredentialedPass) {
  constexpr int kFollowers = 4;
  for (auto credential : std::vector<std::pair<std::string, std::string>>{
           {"Authorization", "Bearer alice"}, {"Cookie", "sessionid=alice"}}) {
    ClockedCache store;
    PageCache page({.cache = store.cache.get(),
                    .coalesce_wait = std::chrono::seconds(30),
                    .clock = &store.clock});
    std::atomic<int> anonymous_calls{0};
    std::latch leader_entered(1), release_leader(1);
    Handler h = [&](Request& r) {
      if (r.headers.contains("Authorization") || r.cookie("sessionid")) {
        Response res = Response::text("private page");
        res.headers.set("Cache-Control", "private");
        return res;
      }
      if (++anonymous_calls == 1) {
        leader_entered.count_down();
        release_leader.wait();
      }
      Response res = Response::text("public page");
      patch_vary_headers(res, {"Cookie"});  // the page depends on the cookie's absence
      return res;
    };
    Request credentialed = get("/home/", {credential});
    ASSERT_EQ(cache_status(page.serve(credentialed, h)),
              "cachekit; fwd=uri-miss; detail=private");  // marks hit-for-pass

    std::thread leader([&] {
      Request r = get("/home/");
      EXPECT_EQ(cache_status(page.serve(r, h)), "cachekit; fwd=uri-miss; stored; ttl=600");
    });
    leader_entered.wait();
    std::vector<Response> followed(kFollowers);
    std::vector<std::thread> followers;
    for (int i = 0; i < kFollowers; ++i) {
      followers.emplace_back([&, i] {
        Request r = get("/home/");
        followed[static_cast<std::size_t>(i)] = page.serve(r, h);
      });
    }
    // Wait for the followers to be parked on the leader's flight; with the bug they never
    // park but call the handler (anonymous_calls grows). Bounded so a failure cannot hang.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (page.coalesced_waiters() < kFollowers && anonymous_calls.load() == 1 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    // A credentialed request is still passing: it never queues behind the anonymous leader.
    Request other = get("/home/", {credential});
    EXPECT_EQ(page.serve(other, h).body, "private page") << credential.first;
    release_leader.count_down();
    leader.join();
    for (auto& t : followers) t.join();

    EXPECT_EQ(anonymous_calls.load(), 1) << credential.first;
    for (const Response& r : followed) {
      EXPECT_EQ(r.body, "public page");
      EXPECT_EQ(cache_status(r), "cachekit; fwd=uri-miss; collapsed") << credential.first;
    }
    EXPECT_EQ(page.coalesced_waiters(), 0u);
    Request after = get("/home/");
    EXPECT_EQ(cache_status(page.serve(after, h)), "cachekit; hit; ttl=600");
  }
}

// An error answer (the upstream down: 502) says nothing about whether the page can be shared,
// so it must not put the page into hit-for-pass: it did, and when the upstream came back every
// miss called the handler for 30 s instead of the first wave coalescing behind one call.
TEST(Coalescing, ConcurrentMissesAfterAnErrorAnswerStillCoalesce) {
  ClockedCache store;
  PageCache page({.cache = store.cache.get(), .clock = &store.clock});
  std::atomic<bool> down{true};
  std::atomic<int> calls{0};
  Handler h = [&](Request&) {
    if (down) return Response::text("bad gateway", 502);
    if (++calls == 1) {  // hold until the others park behind us, or (the bug) call too
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (page.coalesced_waiters() < kThreads - 1 && calls.load() == 1 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::yield();
      }
    }
    return Response::text("page");
  };
  Request first = get("/hot/");
  ASSERT_EQ(page.serve(first, h).status, 502);
  down = false;
  auto responses = race(page, h, [](int) { return get("/hot/"); });
  EXPECT_EQ(calls.load(), 1);
  for (const Response& r : responses) EXPECT_EQ(r.body.view(), "page");
}

}  // namespace
}  // namespace cachekit::http
