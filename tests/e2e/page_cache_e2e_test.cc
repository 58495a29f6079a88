// End-to-end tests of the page cache behind the real server: cache_page'd routes, class-based
// views with a cached GET, and the site-wide cache middleware, exercised over real loopback
// HTTP. Time moves through a ManualClock shared by the store and the page cache — no sleeps
// for expiry.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/server.h"
#include "e2e/http_client.h"
#include "support/backend_wrapper.h"

namespace cachekit::server {
namespace {

using namespace std::chrono_literals;
using cachekit::testing::HttpClient;
using ::testing::HasSubstr;
using ::testing::Not;

ServerOptions test_options() {
  ServerOptions o;
  o.port = 0;
  o.io_threads = 1;
  o.handler_threads = 8;
  o.access_log = false;
  return o;
}

// A cache on a ManualClock, plus the server; each test registers its routes, then start()s.
struct Site {
  ManualClock clock;
  // A store the test can "kill": once down, every call fails as a down server's would.
  std::shared_ptr<testing::BackendWrapper> backend = std::make_shared<testing::BackendWrapper>(
      make_locmem_backend(LocmemOptions{.max_entries = 1000, .clock = &clock}));
  Cache cache{backend, CacheOptions{.alias = "default", .clock = &clock}};
  Server server{test_options()};
  std::atomic<int> calls{0};

  // A cache_page'd handler whose PageCache reads the test clock.
  http::CachedHandler cached(std::chrono::seconds timeout, http::Handler handler) {
    auto page_cache = std::make_shared<const http::PageCache>(
        http::PageCacheOptions{.cache = &cache, .page_timeout = timeout, .clock = &clock});
    return http::CachedHandler{std::move(handler), std::move(page_cache)};
  }
  http::Handler counting(std::string body) {
    return [this, body](http::Request&) {
      ++calls;
      return http::Response::text(body);
    };
  }
};

TEST(PageCacheE2E, MissThenHitFromTheIoThreadWithoutCallingTheHandler) {
  Site site;
  site.server.router().get("/page/", site.cached(60s, site.counting(std::string(1024, 'x'))));
  site.server.start();
  HttpClient client(site.server.port());

  auto miss = client.get("/page/");
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->status, 200);
  EXPECT_THAT(*miss->header("Cache-Status"), HasSubstr("fwd=uri-miss; stored"));
  EXPECT_EQ(site.calls.load(), 1);
  const auto after_miss = site.server.stats();
  EXPECT_EQ(after_miss.dispatched_to_pool, 1U);

  for (int i = 0; i < 20; ++i) {
    auto hit = client.get("/page/");
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->status, 200);
    EXPECT_EQ(hit->body, miss->body);
    EXPECT_THAT(*hit->header("Cache-Status"), HasSubstr("; hit"));
    EXPECT_EQ(hit->header("Age"), "0");
  }
  EXPECT_EQ(site.calls.load(), 1) << "hits never call the handler";
  const auto after_hits = site.server.stats();
  EXPECT_EQ(after_hits.dispatched_to_pool, after_miss.dispatched_to_pool)
      << "a hit on an in-process store is answered on the io thread, without the pool";
  EXPECT_EQ(after_hits.answered_on_io_thread - after_miss.answered_on_io_thread, 20U);
}

TEST(PageCacheE2E, AMissLookedUpOnTheIoThreadIsNotReadAgainOnThePool) {
  Site site;
  site.server.router().get("/page/", site.cached(60s, site.counting("page")));
  site.server.start();
  HttpClient client(site.server.port());

  auto miss = client.get("/page/");
  ASSERT_TRUE(miss);
  EXPECT_EQ(miss->header("Cache-Status"), "cachekit; fwd=uri-miss; stored; ttl=60");
  EXPECT_EQ(site.server.stats().dispatched_to_pool, 1U);
  EXPECT_EQ(site.backend->calls(testing::Op::kGet), 1)
      << "the io thread's header-list read, handed on";
  auto hit = client.get("/page/");
  ASSERT_TRUE(hit);
  EXPECT_EQ(site.backend->calls(testing::Op::kGet), 3)
      << "a hit reads the header list and the page";
}

TEST(PageCacheE2E, ExpiresAfterTheTimeoutOnTheInjectedClock) {
  Site site;
  site.server.router().get("/page/", site.cached(30s, site.counting("v")));
  site.server.start();
  HttpClient client(site.server.port());
  ASSERT_TRUE(client.get("/page/"));
  site.clock.advance(10s);
  auto hit = client.get("/page/");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->header("Age"), "10");
  EXPECT_THAT(*hit->header("Cache-Status"), HasSubstr("hit; ttl=20"));
  EXPECT_EQ(site.calls.load(), 1);
  site.clock.advance(21s);
  auto expired = client.get("/page/");
  ASSERT_TRUE(expired);
  EXPECT_EQ(site.calls.load(), 2) << "31 s after storing, a 30 s page is gone";
  EXPECT_THAT(*expired->header("Cache-Status"), Not(HasSubstr("; hit")));
}

TEST(PageCacheE2E, KeepsVaryVariantsApart) {
  Site site;
  site.server.router().get("/greet/", site.cached(60s, [&site](http::Request& r) {
    ++site.calls;
    auto response = http::Response::text(
        r.headers.get("Accept-Language").value_or("") == "fr" ? "bonjour" : "hello");
    response.headers.set("Vary", "Accept-Language");
    return response;
  }));
  site.server.start();
  HttpClient client(site.server.port());
  auto en = client.get("/greet/", {{"Accept-Language", "en"}});
  auto fr = client.get("/greet/", {{"Accept-Language", "fr"}});
  ASSERT_TRUE(en && fr);
  EXPECT_EQ(en->body, "hello");
  EXPECT_EQ(fr->body, "bonjour");
  EXPECT_EQ(site.calls.load(), 2);
  auto en_again = client.get("/greet/", {{"Accept-Language", "en"}});
  auto fr_again = client.get("/greet/", {{"Accept-Language", "fr"}});
  ASSERT_TRUE(en_again && fr_again);
  EXPECT_EQ(en_again->body, "hello");
  EXPECT_EQ(fr_again->body, "bonjour");
  EXPECT_THAT(*fr_again->header("Cache-Status"), HasSubstr("; hit"));
  EXPECT_EQ(site.calls.load(), 2);
}

// Each handler answers with something that belongs to the requesting client only.
TEST(PageCacheE2E, NeverSharesPrivateResponsesBetweenClients) {
  Site site;
  auto who = [](const http::Request& r) {
    return std::string(r.headers.get("X-Client").value_or("?"));
  };
  auto& router = site.server.router();
  router.get("/cookie/", site.cached(60s, [&, who](http::Request& r) {
    ++site.calls;
    auto response = http::Response::text("for " + who(r));
    response.headers.add("Set-Cookie", "session=" + who(r));
    return response;
  }));
  for (std::string directive : {"private", "no-store"}) {
    router.get("/" + directive + "/", site.cached(60s, [&, who, directive](http::Request& r) {
      ++site.calls;
      auto response = http::Response::text("for " + who(r));
      response.headers.set("Cache-Control", directive);
      return response;
    }));
  }
  router.get("/account/", site.cached(60s, [&, who](http::Request& r) {
    ++site.calls;
    return http::Response::text("account of " +
                                std::string(r.headers.get("Authorization").value_or("nobody")) +
                                " " + who(r));
  }));
  site.server.start();
  const auto port = site.server.port();
  for (std::string path : {"/cookie/", "/private/", "/no-store/", "/account/"}) {
    site.calls = 0;
    HttpClient alice(port), bob(port);
    cachekit::testing::HeaderList alice_headers = {{"X-Client", "alice"}};
    // Only the account page sees Authorization, so the other pages test their own rule.
    if (path == "/account/") alice_headers.emplace_back("Authorization", "Basic YWxpY2U6eA==");
    auto a = alice.get(path, alice_headers);
    auto b = bob.get(path, {{"X-Client", "bob"}});
    ASSERT_TRUE(a && b) << path;
    EXPECT_THAT(a->body, HasSubstr("alice")) << path;
    EXPECT_THAT(b->body, HasSubstr("bob")) << path;
    EXPECT_THAT(b->body, Not(HasSubstr("alice"))) << path;
    EXPECT_EQ(site.calls.load(), 2) << path;
    if (path == "/cookie/") {
      EXPECT_EQ(b->header("Set-Cookie"), "session=bob");
    }
  }
}

// The handler reads the session cookie but forgets `Vary: Cookie`: the page cache adds it,
// so two users never get each other's page, over real connections.
TEST(PageCacheE2E, TwoUsersWithDifferentCookiesNeverSeeEachOthersPage) {
  Site site;
  site.server.router().get("/me/", site.cached(60s, [&site](http::Request& r) {
    ++site.calls;
    return http::Response::text("account of " + r.cookie("sessionid").value_or("nobody"));
  }));
  site.server.start();
  HttpClient alice(site.server.port()), bob(site.server.port());
  for (int round = 0; round < 2; ++round) {
    auto a = alice.get("/me/", {{"Cookie", "sessionid=alice"}});
    auto b = bob.get("/me/", {{"Cookie", "sessionid=bob"}});
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->body, "account of alice");
    EXPECT_EQ(b->body, "account of bob");
    EXPECT_THAT(b->header("Vary").value_or(""), HasSubstr("Cookie"));
    if (round == 1) {
      EXPECT_THAT(*b->header("Cache-Status"), HasSubstr("; hit"));
    }
  }
  EXPECT_EQ(site.calls.load(), 2) << "each user's page is cached for that user only";
}

TEST(PageCacheE2E, AnswersConditionalAndHeadRequestsFromTheCache) {
  Site site;
  site.server.router().get("/doc/", site.cached(60s, site.counting("document body")));
  site.server.start();
  HttpClient client(site.server.port());
  auto first = client.get("/doc/");
  ASSERT_TRUE(first);
  auto etag = first->header("ETag");
  ASSERT_TRUE(etag);

  auto not_modified = client.get("/doc/", {{"If-None-Match", *etag}});
  ASSERT_TRUE(not_modified);
  EXPECT_EQ(not_modified->status, 304);
  EXPECT_EQ(not_modified->body, "");
  EXPECT_EQ(not_modified->header("ETag"), etag);

  auto head = client.request("HEAD", "/doc/");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->status, 200);
  EXPECT_EQ(head->header("Content-Length"), "13");
  EXPECT_THAT(*head->header("Cache-Status"), HasSubstr("; hit"));

  auto after = client.get("/doc/");  // the connection stayed in sync: no stray body bytes
  ASSERT_TRUE(after);
  EXPECT_EQ(after->body, "document body");
  EXPECT_EQ(site.calls.load(), 1);
}

TEST(PageCacheE2E, ASuccessfulPostInvalidatesThePage) {
  Site site;
  std::atomic<int> version{1};
  site.server.router().route({"GET", "POST"}, "/item/", site.cached(60s, [&](http::Request& r) {
    if (r.method == "POST") {
      ++version;
      return http::Response::text("saved");
    }
    ++site.calls;
    return http::Response::text("v" + std::to_string(version.load()));
  }));
  site.server.start();
  HttpClient client(site.server.port());
  EXPECT_EQ(client.get("/item/")->body, "v1");
  EXPECT_EQ(client.get("/item/")->body, "v1");
  EXPECT_EQ(site.calls.load(), 1);
  auto saved = client.request("POST", "/item/", {}, "new");
  ASSERT_TRUE(saved);
  EXPECT_EQ(saved->status, 200);
  EXPECT_THAT(*saved->header("Cache-Status"), HasSubstr("invalidated"));
  EXPECT_EQ(client.get("/item/")->body, "v2");
  EXPECT_EQ(site.calls.load(), 2);
}

TEST(PageCacheE2E, OneHostSpelledDifferentlyIsOneKey) {
  Site site;
  site.server.router().get("/page/", site.cached(60s, site.counting("the page")));
  site.server.start();
  HttpClient client(site.server.port());
  auto first = client.get("/page/", {{"Host", "127.0.0.1"}});
  ASSERT_TRUE(first);
  EXPECT_THAT(*first->header("Cache-Status"), HasSubstr("fwd=uri-miss; stored"));
  for (const char* host : {"127.0.0.1:80", "127.0.0.1:0080"}) {
    auto again = client.get("/page/", {{"Host", host}});
    ASSERT_TRUE(again) << host;
    EXPECT_THAT(*again->header("Cache-Status"), HasSubstr("; hit")) << host;
  }
  EXPECT_EQ(site.calls.load(), 1) << "a default port minted a second key";
}

class CountingView : public View {
 public:
  http::Response get(http::Request&) override {
    ++gets;
    return http::Response::text("state " + std::to_string(state.load()));
  }
  http::Response post(http::Request&) override {
    ++state;
    return http::Response::text("ok", 201);
  }
  std::atomic<int> gets{0};
  std::atomic<int> state{0};
};

TEST(PageCacheE2E, CachesTheGetOfAClassBasedViewAndInvalidatesOnItsPost) {
  Site site;
  auto view = std::make_shared<CountingView>();
  site.server.router().view("/view/", view, cache_get(60s, {.cache = &site.cache}));
  site.server.start();
  HttpClient client(site.server.port());
  EXPECT_EQ(client.get("/view/")->body, "state 0");
  const auto pool_after_miss = site.server.stats().dispatched_to_pool;
  auto hit = client.get("/view/");
  ASSERT_TRUE(hit);
  EXPECT_EQ(hit->body, "state 0");
  EXPECT_THAT(*hit->header("Cache-Status"), HasSubstr("; hit"));
  EXPECT_EQ(view->gets.load(), 1);
  EXPECT_EQ(site.server.stats().dispatched_to_pool, pool_after_miss);

  auto posted = client.request("POST", "/view/", {}, "x");
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->status, 201);
  EXPECT_EQ(client.get("/view/")->body, "state 1");
  EXPECT_EQ(view->gets.load(), 2);
}

TEST(PageCacheE2E, CacheMiddlewarePlacedFirstSeesVaryAddedByAnInnerMiddleware) {
  Site site;
  site.server.use(http::cache_middleware(
      http::PageCacheOptions{.cache = &site.cache, .default_timeout = 60s, .clock = &site.clock}));
  site.server.use([](http::Request& r, const http::Next& next) {
    http::Response response = next(r);
    response.headers.add("Vary", "X-Variant");
    return response;
  });
  site.server.router().get("/variant/", [&site](http::Request& r) {
    ++site.calls;
    return http::Response::text(std::string(r.headers.get("X-Variant").value_or("none")));
  });
  site.server.start();
  HttpClient client(site.server.port());
  EXPECT_EQ(client.get("/variant/", {{"X-Variant", "a"}})->body, "a");
  EXPECT_EQ(client.get("/variant/", {{"X-Variant", "b"}})->body, "b");
  EXPECT_EQ(site.calls.load(), 2) << "without the inner Vary, b would have been served a";
  auto a_again = client.get("/variant/", {{"X-Variant", "a"}});
  ASSERT_TRUE(a_again);
  EXPECT_EQ(a_again->body, "a");
  EXPECT_THAT(*a_again->header("Cache-Status"), HasSubstr("; hit"));
  EXPECT_EQ(site.calls.load(), 2);
}

TEST(PageCacheE2E, AKilledBackendLeavesResponsesUnchanged) {
  Site site;
  site.server.watch_cache("default", site.cache);
  site.server.router().get("/page/", site.cached(60s, site.counting("the page")));
  site.server.start();
  HttpClient client(site.server.port());
  auto alive = client.get("/page/");
  ASSERT_TRUE(alive);
  ASSERT_TRUE(client.get("/page/"));  // a hit while the store is up
  site.backend->set_down(true);
  for (int i = 0; i < 3; ++i) {
    auto dead = client.get("/page/");
    ASSERT_TRUE(dead);
    EXPECT_EQ(dead->status, alive->status);
    EXPECT_EQ(dead->body, alive->body);
    EXPECT_THAT(*dead->header("Cache-Status"), Not(HasSubstr("stored")));
  }
  EXPECT_EQ(site.calls.load(), 4) << "every request after the kill ran the handler";
  auto metrics = client.get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              Not(HasSubstr("cachekit_backend_errors_total{cache=\"default\"} 0\n")));
  EXPECT_THAT(metrics->body, HasSubstr("cachekit_backend_errors_total{cache=\"default\"} "));
  EXPECT_GT(site.cache.stats().errors, 0U);
}

TEST(PageCacheE2E, ConcurrentMissesOverRealConnectionsCallTheHandlerOnce) {
  Site site;
  constexpr int kClients = 6;
  // The leader holds until every other client is parked on its flight (polled, bounded), so
  // they all arrive while it works, however slowly the machine schedules them.
  std::shared_ptr<const http::PageCache> page;
  http::CachedHandler slow = site.cached(60s, [&](http::Request&) {
    ++site.calls;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (page->coalesced_waiters() < kClients - 1 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    return http::Response::text("expensive");
  });
  page = slow.page_cache;
  site.server.router().get("/slow/", slow);
  site.server.start();
  std::barrier start_line(kClients);
  std::atomic<int> ok{0}, collapsed{0};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      HttpClient client(site.server.port());
      start_line.arrive_and_wait();
      auto r = client.get("/slow/");
      if (r && r->status == 200 && r->body == "expensive") ++ok;
      if (r && r->header("Cache-Status")->find("collapsed") != std::string::npos) ++collapsed;
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(ok.load(), kClients);
  EXPECT_EQ(site.calls.load(), 1);
  EXPECT_EQ(collapsed.load(), kClients - 1);
  // The server counts a request after writing it, so the last count may trail the client.
  const auto expected = static_cast<std::uint64_t>(collapsed.load());
  auto counted = [&] {
    return site.server.metrics().cache_outcomes("cachekit", CacheOutcome::kCollapsed);
  };
  for (int i = 0; i < 500 && counted() < expected; ++i) std::this_thread::sleep_for(2ms);
  EXPECT_EQ(counted(), expected);
}

}  // namespace
}  // namespace cachekit::server
