// End-to-end: page hits on Redis answered by the server's io thread, with the header list and
// the page read in one pipelined round trip (Backend::async_reads), on a private redis-server
// that the tests stop, kill and restart.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <latch>
#include <thread>
#include <vector>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/server.h"
#include "e2e/http_client.h"
#include "support/redis_test_support.h"

namespace cachekit::server {
namespace {

using namespace std::chrono_literals;
using cachekit::testing::HttpClient;
using cachekit::testing::RawRedis;
using ::testing::HasSubstr;

ServerOptions test_options() {
  ServerOptions o;
  o.port = 0;
  o.io_threads = 1;
  o.handler_threads = 4;
  o.access_log = false;
  return o;
}

std::shared_ptr<Backend> redis_backend(const std::string& url, std::chrono::milliseconds io) {
  auto backend = make_redis_backend(RedisOptions{.locations = {url}, .io_timeout = io});
  if (!backend.ok()) throw std::runtime_error(backend.status().message());
  return *backend;
}

// A private redis-server (database 2, as the storefront uses), a Cache on it and the server
// with a cache_page'd route.
struct RedisSite {
  explicit RedisSite(std::chrono::milliseconds io_timeout = 200ms)
      : cache(redis_backend(testing::url_of(redis, 2), io_timeout),
              CacheOptions{.alias = "default"}) {
    auto page_cache =
        std::make_shared<const http::PageCache>(http::PageCacheOptions{.cache = &cache});
    server.router().get("/page/",
                        http::CachedHandler{[this](http::Request&) {
                                              ++calls;
                                              return http::Response::text(std::string(1024, 'p'));
                                            },
                                            page_cache});
    server.start();
  }
  [[nodiscard]] RawRedis raw() const { return RawRedis("127.0.0.1", redis.port(), 2); }

  testing::ServerProcess redis = testing::start_private_redis();
  Cache cache;
  Server server{test_options()};
  std::atomic<int> calls{0};
};

TEST(RedisPagesE2E, AHitIsTwoPipelinedGetsAnsweredOnTheIoThread) {
  RedisSite site;
  HttpClient client(site.server.port());
  auto miss = client.get("/page/");
  ASSERT_TRUE(miss);
  EXPECT_THAT(*miss->header("Cache-Status"), HasSubstr("fwd=uri-miss; stored"));
  ASSERT_EQ(site.calls.load(), 1);

  RawRedis raw = site.raw();
  const long long gets_before = raw.calls("get");
  const ServerStats before = site.server.stats();
  for (int i = 0; i < 20; ++i) {
    auto hit = client.get("/page/");
    ASSERT_TRUE(hit);
    EXPECT_EQ(hit->status, 200);
    EXPECT_EQ(hit->body, miss->body);
    EXPECT_THAT(*hit->header("Cache-Status"), HasSubstr("cachekit; hit"));
  }
  const ServerStats after = site.server.stats();
  EXPECT_EQ(site.calls.load(), 1);
  // No hit went to the handler pool: the io thread answered each one...
  EXPECT_EQ(after.dispatched_to_pool, before.dispatched_to_pool);
  EXPECT_EQ(after.answered_on_io_thread, before.answered_on_io_thread + 20);
  // ...with two GETs (the header list and the page) and nothing else read.
  EXPECT_EQ(raw.calls("get") - gets_before, 40);
}

// Two io threads with a connection to Redis each, and handler threads storing pages: every
// client gets its own page, and hits keep coming from the io threads.
TEST(RedisPagesE2E, ConcurrentClientsOnTwoIoThreadsGetTheirOwnPages) {
  testing::ServerProcess redis = testing::start_private_redis();
  Cache cache(redis_backend(testing::url_of(redis, 2), 200ms), CacheOptions{.alias = "default"});
  auto page_cache =
      std::make_shared<const http::PageCache>(http::PageCacheOptions{.cache = &cache});
  ServerOptions options = test_options();
  options.io_threads = 2;
  Server server(options);
  server.router().get(
      "/item/{id}/",
      http::CachedHandler{[](http::Request& r) { return http::Response::text("item " + r.path); },
                          page_cache});
  server.start();
  constexpr int kClients = 4;
  constexpr int kRequests = 200;
  std::latch go(kClients);
  std::vector<std::thread> clients;
  clients.reserve(kClients);
  std::atomic<int> wrong{0};
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      HttpClient client(server.port());
      go.arrive_and_wait();
      for (int i = 0; i < kRequests; ++i) {
        const std::string path = "/item/" + std::to_string((t * 7 + i) % 10) + "/";
        auto response = client.get(path);
        if (!response || response->status != 200 || response->body != "item " + path) ++wrong;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(wrong.load(), 0);
  const ServerStats stats = server.stats();
  // At most a miss and a first hit per page and per client go to the pool.
  EXPECT_LE(stats.dispatched_to_pool, 10U * (1 + kClients));
  EXPECT_GE(stats.answered_on_io_thread, kClients * kRequests - 10U * (1 + kClients));
}

TEST(RedisPagesE2E, APageDeletedByAnotherClientIsAMissAtOnce) {
  RedisSite site;
  HttpClient client(site.server.port());
  ASSERT_TRUE(client.get("/page/"));
  ASSERT_TRUE(client.get("/page/"));
  ASSERT_EQ(site.calls.load(), 1);
  RawRedis raw = site.raw();
  auto keys = raw.command({"KEYS", "*cache_page*"});
  ASSERT_FALSE(keys.elements.empty());
  for (const auto& key : keys.elements) raw.command({"DEL", key.str});
  auto after = client.get("/page/");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(site.calls.load(), 2);
}

// Redis frozen (SIGSTOP) with a long I/O timeout: a page request waits for it, and meanwhile
// the same io thread goes on answering other requests. An io thread that waited for Redis
// itself would answer nothing until the page request was done.
TEST(RedisPagesE2E, AFrozenRedisDoesNotHoldTheIoThread) {
  RedisSite site(10s);
  HttpClient warm(site.server.port());
  ASSERT_TRUE(warm.get("/page/"));
  ASSERT_TRUE(warm.get("/page/"));  // now answered from the pipelined reads
  site.redis.stop();
  std::atomic<bool> page_answered{false};
  std::latch sending(1);
  std::thread page_request([&] {
    HttpClient client(site.server.port());
    sending.count_down();
    auto page = client.get("/page/");
    EXPECT_TRUE(page);
    page_answered = true;
  });
  sending.wait();
  // A hundred answers in a row from the same io thread while the page request waits (it is
  // read within microseconds of being sent; these take milliseconds).
  HttpClient other(site.server.port());
  std::optional<testing::ClientResponse> not_found;
  for (int i = 0; i < 100; ++i) {
    not_found = other.get("/nowhere/");
    ASSERT_TRUE(not_found);
  }
  EXPECT_EQ(not_found->status, 404);
  EXPECT_FALSE(page_answered.load()) << "the page request did not wait for the frozen Redis";
  site.redis.resume();
  page_request.join();
  EXPECT_TRUE(page_answered.load());
}

// The server killed for seconds, then back empty on the same port: every request is answered
// meanwhile (the handler runs: fail open), and hits come from the io thread again afterwards.
TEST(RedisPagesE2E, ARedisKilledForSecondsAndBackEmptyCostsNoRequest) {
  RedisSite site;
  HttpClient client(site.server.port());
  ASSERT_TRUE(client.get("/page/"));
  ASSERT_TRUE(client.get("/page/"));
  site.redis.kill();
  const auto outage_end = std::chrono::steady_clock::now() + 3s;
  int during = 0;
  while (std::chrono::steady_clock::now() < outage_end) {
    // A connection each: the server ends a keep-alive connection after 1000 requests.
    auto response = HttpClient(site.server.port()).get("/page/");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
    EXPECT_EQ(response->body, std::string(1024, 'p'));
    ++during;
  }
  EXPECT_GT(during, 0);
  site.redis.restart();
  // Back, empty: the first request stores the page again; within a few seconds (the reads
  // retry their connection after one), hits are answered by the io thread again.
  bool on_io_again = false;
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (!on_io_again && std::chrono::steady_clock::now() < give_up) {
    const ServerStats before = site.server.stats();
    auto response = client.get("/page/");
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
    const ServerStats after = site.server.stats();
    on_io_again = after.dispatched_to_pool == before.dispatched_to_pool &&
                  response->header("Cache-Status")->find("; hit") != std::string::npos;
    if (!on_io_again) std::this_thread::sleep_for(50ms);
  }
  EXPECT_TRUE(on_io_again);
  EXPECT_GE(site.raw().calls("get"), 2);
}

}  // namespace
}  // namespace cachekit::server
