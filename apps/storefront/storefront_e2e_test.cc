// End to end: the real slow-upstream and storefront processes on free loopback ports, real HTTP,
// a real SQLite file, and a short run of the real locust.
//
// For each playground step: the first call waits for the upstream (≥ its delay), the second is
// fast, comes from the cache and leaves the upstream's call counter unchanged. For the store: a
// write expires the cached report and product, so the next read is fresh. Then a few locust
// users browse for a few seconds without a single failure.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>

#include "e2e/http_client.h"
#include "support/server_process.h"

namespace {

using cachekit::testing::ClientResponse;
using cachekit::testing::ServerProcess;
using Clock = std::chrono::steady_clock;

constexpr double kDelaySeconds = 1.0;  // what the hello endpoints ask the upstream to wait

std::uint16_t as_port(int port) { return static_cast<std::uint16_t>(port); }

// One request on a fresh connection; fails the test when there is no response.
ClientResponse call(int port, std::string_view method, std::string_view target,
                    std::string_view body = {}) {
  cachekit::testing::HeaderList headers;
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  auto response = cachekit::testing::fetch(as_port(port), method, target, headers, body);
  if (!response) {
    ADD_FAILURE() << method << " " << target << ": no response";
    return {};
  }
  return *response;
}

struct Timed {
  ClientResponse response;
  double seconds;
};

Timed timed_get(int port, std::string_view target) {
  const auto start = Clock::now();
  auto response = call(port, "GET", target);
  return {std::move(response), std::chrono::duration<double>(Clock::now() - start).count()};
}

class StorefrontEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                     ("storefront-e2e-" + std::to_string(::getpid())));
    std::filesystem::create_directories(*dir_);
    // A smaller store than the demo's, so seeding stays quick in the sanitizer builds.
    std::ofstream(*dir_ / "storefront.toml") << "[storefront]\n"
                                                "seed_products = 300\n"
                                                "seed_orders = 5000\n"
                                                "hello_timeout = 300\n"
                                                "[caches.default]\n"
                                                "backend = \"locmem\"\n"
                                                "timeout = 600\n"
                                                "key_prefix = \"e2e\"\n";
    upstream_ = new ServerProcess(
        ServerProcess::start({SLOW_UPSTREAM_PATH, "--port", "{port}", "--threads", "64"}));
    storefront_ = new ServerProcess(ServerProcess::start(
        {STOREFRONT_PATH, "--config", (*dir_ / "storefront.toml").string(), "--port", "{port}",
         "--upstream", "http://127.0.0.1:" + std::to_string(upstream_->port()), "--upstream-delay",
         std::to_string(kDelaySeconds), "--database", (*dir_ / "store.sqlite3").string(),
         "--handler-threads", "32"},
        std::chrono::seconds(60)));
  }

  static void TearDownTestSuite() {
    delete storefront_;
    delete upstream_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }

  static int port() { return storefront_->port(); }

  static std::int64_t upstream_calls() {
    auto response = call(upstream_->port(), "GET", "/stats");
    auto stats = nlohmann::json::parse(response.body, nullptr, false);
    if (stats.is_discarded() || !stats.contains("delay_calls")) {
      ADD_FAILURE() << "bad /stats answer: " << response.body;
      return -1;
    }
    return stats["delay_calls"].get<std::int64_t>();
  }

  // First call slow (the upstream), second fast and from the cache, upstream not called again.
  static void expect_cached_after_first_call(std::string_view path, bool page_cache) {
    SCOPED_TRACE(std::string(path));
    const auto calls_before = upstream_calls();
    auto first = timed_get(port(), path);
    ASSERT_EQ(first.response.status, 200) << first.response.body;
    EXPECT_GE(first.seconds, kDelaySeconds);
    EXPECT_NE(first.response.body.find("<h1>Hello"), std::string::npos) << first.response.body;
    EXPECT_EQ(upstream_calls(), calls_before + 1);

    auto second = timed_get(port(), path);
    ASSERT_EQ(second.response.status, 200);
    EXPECT_LT(second.seconds, kDelaySeconds / 2);
    if (page_cache) {
      EXPECT_NE(second.response.header("Cache-Status").value_or("").find("cachekit; hit"),
                std::string::npos);
      EXPECT_EQ(second.response.body, first.response.body);  // the very page, frozen
    } else {
      EXPECT_EQ(second.response.header("X-Data-Source").value_or(""), "cache");
    }
    EXPECT_EQ(upstream_calls(), calls_before + 1);
  }

  static std::filesystem::path* dir_;
  static ServerProcess* upstream_;
  static ServerProcess* storefront_;
};

std::filesystem::path* StorefrontEndToEnd::dir_ = nullptr;
ServerProcess* StorefrontEndToEnd::upstream_ = nullptr;
ServerProcess* StorefrontEndToEnd::storefront_ = nullptr;

TEST_F(StorefrontEndToEnd, IndexListsEveryEndpoint) {
  auto index = call(port(), "GET", "/");
  ASSERT_EQ(index.status, 200);
  for (const char* path :
       {"/playground/hello/nocache/", "/playground/hello/lowlevel/", "/playground/hello/function/",
        "/playground/hello/class/", "/store/products/"}) {
    EXPECT_NE(index.body.find(path), std::string::npos) << path;
  }
}

TEST_F(StorefrontEndToEnd, UncachedHelloCallsTheUpstreamEveryTime) {
  const auto calls_before = upstream_calls();
  for (int i = 0; i < 2; ++i) {
    auto hello = timed_get(port(), "/playground/hello/nocache/");
    ASSERT_EQ(hello.response.status, 200);
    EXPECT_GE(hello.seconds, kDelaySeconds);
    EXPECT_EQ(hello.response.header("X-Data-Source").value_or(""), "upstream");
  }
  EXPECT_EQ(upstream_calls(), calls_before + 2);
}

TEST_F(StorefrontEndToEnd, LowLevelApiServesTheSecondCallFromTheCache) {
  expect_cached_after_first_call("/playground/hello/lowlevel/", /*page_cache=*/false);
}

TEST_F(StorefrontEndToEnd, CachePageOnAFunctionServesTheSecondCallFromTheCache) {
  expect_cached_after_first_call("/playground/hello/function/", /*page_cache=*/true);
}

TEST_F(StorefrontEndToEnd, CachePageOnAClassBasedViewServesTheSecondCallFromTheCache) {
  expect_cached_after_first_call("/playground/hello/class/", /*page_cache=*/true);
}

TEST_F(StorefrontEndToEnd, LessonUrlIsTheCachedFunctionVersion) {
  expect_cached_after_first_call("/playground/hello/", /*page_cache=*/true);
}

TEST_F(StorefrontEndToEnd, StoreWriteExpiresTheCachedReport) {
  const std::string report = "/store/products/?collection=3&sort=price";
  auto first = call(port(), "GET", report);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.header("X-Data-Source").value_or(""), "database");
  auto second = call(port(), "GET", report);
  EXPECT_EQ(second.header("X-Data-Source").value_or(""), "cache");
  EXPECT_EQ(second.body, first.body);

  auto products = nlohmann::json::parse(first.body);
  ASSERT_FALSE(products["results"].empty());
  const auto id = products["results"][0]["id"].get<std::int64_t>();
  const std::string detail = "/store/products/" + std::to_string(id) + "/";
  call(port(), "GET", detail);
  EXPECT_EQ(call(port(), "GET", detail).header("X-Data-Source").value_or(""), "cache");

  auto patched = call(port(), "PATCH", detail, R"({"title": "Renamed by the test"})");
  ASSERT_EQ(patched.status, 200) << patched.body;

  auto fresh = call(port(), "GET", report);
  EXPECT_EQ(fresh.header("X-Data-Source").value_or(""), "database");
  EXPECT_NE(fresh.body.find("Renamed by the test"), std::string::npos);
  auto fresh_detail = call(port(), "GET", detail);
  EXPECT_EQ(fresh_detail.header("X-Data-Source").value_or(""), "database");
  EXPECT_NE(fresh_detail.body.find("Renamed by the test"), std::string::npos);

  // A new product also expires the reports.
  EXPECT_EQ(call(port(), "GET", report).header("X-Data-Source").value_or(""), "cache");
  auto created = call(port(), "POST", "/store/products/",
                      R"({"title": "New in the test", "unit_price": 0, "collection_id": 3})");
  ASSERT_EQ(created.status, 201) << created.body;
  auto after_create = call(port(), "GET", report);
  EXPECT_EQ(after_create.header("X-Data-Source").value_or(""), "database");
  EXPECT_NE(after_create.body.find("New in the test"), std::string::npos);
}

TEST_F(StorefrontEndToEnd, BadInputGetsAClearError) {
  auto bad_filter = call(port(), "GET", "/store/products/?collection=abc");
  EXPECT_EQ(bad_filter.status, 400);
  EXPECT_NE(bad_filter.body.find("collection"), std::string::npos);
  EXPECT_EQ(call(port(), "GET", "/store/products/?sort=drop").status, 400);
  EXPECT_EQ(call(port(), "POST", "/store/products/", "{not json").status, 400);
  EXPECT_EQ(call(port(), "POST", "/store/products/", R"({"title": "x"})").status, 400);
  EXPECT_EQ(call(port(), "PATCH", "/store/products/999999/", R"({"title": "x"})").status, 404);
  EXPECT_EQ(call(upstream_->port(), "GET", "/delay/soon").status, 400);
}

TEST_F(StorefrontEndToEnd, LocustSmokeHasNoFailures) {
  // The cached hello page is warm after the tests above; warm it anyway when run alone.
  call(port(), "GET", "/playground/hello/");
  const auto csv = (*dir_ / "smoke").string();
  const std::string command =
      "HELLO_PATH=/playground/hello/ PRODUCTS=300 WAIT_MIN=0.05 WAIT_MAX=0.2 " LOCUST_PATH
      " -f " LOCUSTFILE
      " --headless --users 5 --spawn-rate 5 --run-time 5s --only-summary --host "
      "http://127.0.0.1:" +
      std::to_string(port()) + " --csv " + csv + " > " + csv + ".log 2>&1";
  const int status = std::system(command.c_str());
  std::ifstream log(csv + ".log");
  std::stringstream log_text;
  log_text << log.rdbuf();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "locust failed (exit " << status << "):\n"
      << log_text.str();

  // The Aggregated row: Type,Name,Request Count,Failure Count,...
  std::ifstream stats(csv + "_stats.csv");
  std::string line;
  bool found = false;
  while (std::getline(stats, line)) {
    if (line.find(",Aggregated,") == std::string::npos) continue;
    found = true;
    std::stringstream fields(line);
    std::string type, name, requests, failures;
    std::getline(fields, type, ',');
    std::getline(fields, name, ',');
    std::getline(fields, requests, ',');
    std::getline(fields, failures, ',');
    EXPECT_GT(std::stoll(requests), 20) << line;
    EXPECT_EQ(std::stoll(failures), 0) << line << "\n" << log_text.str();
  }
  EXPECT_TRUE(found) << "no Aggregated row in " << csv << "_stats.csv";
}

}  // namespace

namespace {

// An upstream URL with credentials must never reach a response: not the 502 a failed call
// answers, not the index page. Port 9 (discard) on loopback has no listener here.
TEST(StorefrontSecrets, UpstreamCredentialsStayOutOfTheErrorBodyAndTheIndex) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("storefront-secrets-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "storefront.toml") << "[storefront]\nseed_products = 10\nseed_orders = 10\n"
                                            "[caches.default]\nbackend = \"locmem\"\n";
  const std::string secret = "s3cr/et?pw";
  {
    ServerProcess storefront = ServerProcess::start(
        {STOREFRONT_PATH, "--config", (dir / "storefront.toml").string(), "--port", "{port}",
         "--upstream", "http://user:" + secret + "@127.0.0.1:9", "--database",
         (dir / "store.sqlite3").string()},
        std::chrono::seconds(60));
    auto failed = call(storefront.port(), "GET", "/playground/hello/nocache/");
    EXPECT_EQ(failed.status, 502);
    EXPECT_NE(failed.body.find("user:***@127.0.0.1:9"), std::string::npos) << failed.body;
    EXPECT_EQ(failed.body.find("s3cr"), std::string::npos) << failed.body;
    auto index = call(storefront.port(), "GET", "/");
    EXPECT_EQ(index.status, 200);
    EXPECT_EQ(index.body.find("s3cr"), std::string::npos) << index.body;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace

namespace {

// allowed_hosts in [storefront] reaches the server: a listed name (and a subdomain of a
// ".domain" pattern) is served, any other Host gets 400 before the page cache sees it.
TEST(StorefrontSettings, AllowedHostsFromTheConfigFileReachTheServer) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("storefront-hosts-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "storefront.toml") << "[storefront]\nseed_products = 10\nseed_orders = 10\n"
                                            "allowed_hosts = [\"shop.example\", \".cdn.example\"]\n"
                                            "[caches.default]\nbackend = \"locmem\"\n";
  {
    ServerProcess storefront =
        ServerProcess::start({STOREFRONT_PATH, "--config", (dir / "storefront.toml").string(),
                              "--port", "{port}", "--database", (dir / "store.sqlite3").string()},
                             std::chrono::seconds(60));
    auto get_as = [&](std::string host) {
      auto response = cachekit::testing::fetch(as_port(storefront.port()), "GET", "/",
                                               {{"Host", std::move(host)}});
      return response ? response->status : 0;
    };
    EXPECT_EQ(get_as("shop.example"), 200);
    EXPECT_EQ(get_as("img.cdn.example:8000"), 200);
    EXPECT_EQ(get_as("evil.example"), 400);
    EXPECT_EQ(get_as("127.0.0.1"), 400);  // a list replaces the loopback default
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
