// End to end, the herd and the outage: the real slow-upstream and storefront processes (and a
// private redis-server for the fleet), real HTTP on loopback.
//
//   - 200 concurrent requests on a cold cached page: one upstream call, with one storefront and
//     with two storefronts sharing one Redis (100 requests each, all in flight together);
//   - an expired page under load with stale-while-revalidate: every reader answered at once
//     with the stale page, one upstream call refreshes it;
//   - the upstream killed with stale-if-error: the stale page until stale-until (no error to
//     any client), then 502s; the upstream back on its port: fresh pages again.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <latch>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "e2e/http_client.h"
#include "support/server_process.h"

namespace {

using cachekit::testing::ClientResponse;
using cachekit::testing::ServerProcess;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kPage = "/playground/hello/";
constexpr const char* kHost = "shop.test";  // every storefront keys the page the same way

struct Answer {
  int status = 0;  // 0: no response
  std::string cache_status;
  double seconds = 0;
};

Answer get_page(int port) {
  const auto start = Clock::now();
  auto response =
      cachekit::testing::fetch(static_cast<std::uint16_t>(port), "GET", kPage, {{"Host", kHost}});
  Answer answer;
  answer.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (response) {
    answer.status = response->status;
    answer.cache_status = response->header("Cache-Status").value_or("");
  }
  return answer;
}

// `per_port` requests to each port, all released together at a latch.
std::vector<Answer> burst(const std::vector<int>& ports, int per_port) {
  const auto total = static_cast<std::ptrdiff_t>(ports.size()) * per_port;
  std::vector<Answer> answers(static_cast<std::size_t>(total));
  std::latch go(total);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      answers[i] = get_page(ports[i % ports.size()]);
    });
  }
  for (auto& t : threads) t.join();
  return answers;
}

std::int64_t upstream_calls(int upstream_port) {
  auto response =
      cachekit::testing::fetch(static_cast<std::uint16_t>(upstream_port), "GET", "/stats");
  if (!response) return -1;
  auto stats = nlohmann::json::parse(response->body, nullptr, false);
  return stats.is_discarded() ? -1 : stats.value("delay_calls", std::int64_t{-1});
}

class StaleEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("stale-e2e-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    upstream_.emplace(
        ServerProcess::start({SLOW_UPSTREAM_PATH, "--port", "{port}", "--threads", "64"}));
  }
  void TearDown() override {
    storefronts_.clear();
    upstream_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A storefront on the upstream with `extra` flags; the SQLite file is its own.
  int start_storefront(std::vector<std::string> extra, double delay) {
    std::vector<std::string> argv = {
        STOREFRONT_PATH,
        "--port",
        "{port}",
        "--upstream",
        "http://127.0.0.1:" + std::to_string(upstream_->port()),
        "--upstream-delay",
        std::to_string(delay),
        "--database",
        (dir_ / ("store" + std::to_string(storefronts_.size()) + ".sqlite3")).string(),
        "--handler-threads",
        "128",
        "--allowed-host",
        kHost};
    argv.insert(argv.end(), extra.begin(), extra.end());
    write_config();
    argv.insert(argv.end(), {"--config", (dir_ / "storefront.toml").string()});
    storefronts_.push_back(ServerProcess::start(std::move(argv), seconds(60)));
    return storefronts_.back().port();
  }
  void write_config() const {
    std::ofstream(dir_ / "storefront.toml") << "[storefront]\nseed_products = 50\n"
                                               "seed_orders = 100\n"
                                               "[caches.default]\nbackend = \"locmem\"\n";
  }
  std::int64_t calls() const { return upstream_calls(upstream_->port()); }

  std::filesystem::path dir_;
  std::optional<ServerProcess> upstream_;
  std::vector<ServerProcess> storefronts_;
};

TEST_F(StaleEndToEnd, ColdPageUnderLoadCallsTheUpstreamOnce) {
  int port = start_storefront({}, 1.0);
  auto before = calls();
  for (const Answer& a : burst({port}, 200)) EXPECT_EQ(a.status, 200) << a.cache_status;
  EXPECT_EQ(calls(), before + 1);
}

TEST_F(StaleEndToEnd, TwoStorefrontsOnOneRedisCallTheUpstreamOnce) {
  ServerProcess redis = ServerProcess::start({"redis-server", "--port", "{port}", "--bind",
                                              "127.0.0.1", "--save", "", "--appendonly", "no"});
  std::string url = "redis://127.0.0.1:" + std::to_string(redis.port()) + "/2";
  int a = start_storefront({"--cache-url", url}, 1.0);
  int b = start_storefront({"--cache-url", url}, 1.0);
  auto before = calls();
  int collapsed = 0;
  for (const Answer& answer : burst({a, b}, 100)) {
    EXPECT_EQ(answer.status, 200) << answer.cache_status;
    if (answer.cache_status.find("collapsed") != std::string::npos) ++collapsed;
  }
  EXPECT_EQ(calls(), before + 1);
  // The other storefront's leader waited for the page (its own waiters then read it as hits;
  // the first storefront's waiters are collapsed in-process).
  EXPECT_GE(collapsed, 1);
  storefronts_.clear();
}

TEST_F(StaleEndToEnd, ExpiredPageUnderLoadIsServedStaleAndRefreshedOnce) {
  int port = start_storefront({"--hello-timeout", "2", "--stale-while-revalidate", "60"}, 2.0);
  ASSERT_EQ(get_page(port).status, 200);
  const auto stored = Clock::now();
  auto before = calls();
  // The page expires on the storefront's clock: wait for real time to pass it.
  std::this_thread::sleep_until(stored + milliseconds(2200));
  int stale = 0;
  for (const Answer& a : burst({port}, 50)) {
    EXPECT_EQ(a.status, 200);
    EXPECT_LT(a.seconds, 1.0) << a.cache_status;  // never the upstream's 2 s
    if (a.cache_status.find("detail=stale-while-revalidate") != std::string::npos) ++stale;
  }
  EXPECT_GE(stale, 1);
  // The one background refresh lands within the upstream's delay.
  const auto deadline = Clock::now() + seconds(10);
  Answer fresh;
  do {
    fresh = get_page(port);
  } while (fresh.cache_status.find("; hit; ttl=") == std::string::npos && Clock::now() < deadline);
  EXPECT_NE(fresh.cache_status.find("; hit; ttl="), std::string::npos) << fresh.cache_status;
  EXPECT_EQ(calls(), before + 1);
}

TEST_F(StaleEndToEnd, UpstreamKilledServesStaleUntilStaleUntilThenErrorsThenRecovers) {
  int port = start_storefront({"--hello-timeout", "2", "--stale-if-error", "4"}, 0.2);
  ASSERT_EQ(get_page(port).status, 200);
  const auto stored = Clock::now();  // fresh until ~stored + 2 s, stale-until ~stored + 6 s
  upstream_->kill();
  int served_stale = 0;
  while (Clock::now() < stored + milliseconds(5500)) {
    Answer a = get_page(port);
    ASSERT_EQ(a.status, 200) << a.cache_status;  // no error reaches a client
    if (a.cache_status.find("detail=stale-if-error") != std::string::npos) ++served_stale;
    std::this_thread::sleep_for(milliseconds(100));  // a reader's pace, not a synchronisation
  }
  EXPECT_GT(served_stale, 10);
  std::this_thread::sleep_until(stored + milliseconds(6500));
  EXPECT_EQ(get_page(port).status, 502);  // past stale-until the error goes through
  upstream_->restart();
  Answer back = get_page(port);
  EXPECT_EQ(back.status, 200);
  EXPECT_NE(back.cache_status.find("stored"), std::string::npos) << back.cache_status;
}

}  // namespace
