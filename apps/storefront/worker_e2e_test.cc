// End to end: the background refresh worker keeps the lesson's page fresh. Real processes on
// free loopback ports: a private redis-server (the cache in database 2, the broker in database
// 1, as in the lesson), the slow-upstream, a storefront, and two `storefront worker` processes.
//
// With a short page timeout (3 s) and refresh interval (1 s), readers of /playground/hello/
// over several intervals never see a miss, and the upstream is called about once per interval
// — one call feeds both the page and the httpbin_result key, and not once per worker: the two
// workers share the schedule through the broker. SIGTERM stops a worker cleanly (exit 0).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "e2e/http_client.h"
#include "support/server_process.h"

namespace {

using cachekit::testing::ServerProcess;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kPageTimeoutSeconds = 3;
constexpr double kIntervalSeconds = 1.0;
constexpr double kDelaySeconds = 0.2;

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A process that does not listen: spawned with its stdout in a file, SIGTERMed at the end.
class Worker {
 public:
  Worker(std::vector<std::string> argv, std::filesystem::path log) : log_(std::move(log)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      std::FILE* out = std::freopen(log_.c_str(), "w", stdout);
      if (out == nullptr) ::_exit(127);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(a.data());
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  ~Worker() {
    if (pid_ > 0) (void)terminate();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // SIGTERM, then the exit status (-1 when it did not exit normally).
  int terminate() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  [[nodiscard]] std::string log() const { return read_file(log_); }

 private:
  std::filesystem::path log_;
  pid_t pid_ = -1;
};

std::int64_t upstream_calls(int port) {
  auto response =
      cachekit::testing::fetch(static_cast<std::uint16_t>(port), "GET", "/stats", {}, {});
  if (!response) return -1;
  auto stats = nlohmann::json::parse(response->body, nullptr, false);
  return stats.is_discarded() ? -1 : stats.value("delay_calls", std::int64_t{-1});
}

// Waits (up to `limit`) until `worker`'s log shows a successful run of `job`.
bool wait_for_run(const Worker& worker, const std::string& job, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (worker.log().find(job + " ") != std::string::npos &&
        worker.log().find(" ms ok") != std::string::npos) {
      return true;
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(WorkerEndToEnd, TwoWorkersKeepTheHelloPageFreshWithOneRefreshPerInterval) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("worker-e2e-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "storefront.toml") << "[storefront]\nseed_products = 50\nseed_orders = 200\n"
                                            "[caches.default]\nbackend = \"locmem\"\n"
                                            "timeout = 600\nkey_prefix = \"e2e\"\n";
  ServerProcess redis = ServerProcess::start({"redis-server", "--port", "{port}", "--bind",
                                              "127.0.0.1", "--save", "", "--appendonly", "no"});
  ServerProcess upstream =
      ServerProcess::start({SLOW_UPSTREAM_PATH, "--port", "{port}", "--threads", "16"});
  const std::string redis_url = "redis://127.0.0.1:" + std::to_string(redis.port());
  const std::vector<std::string> common = {
      "--config",         (dir / "storefront.toml").string(),
      "--cache-url",      redis_url + "/2",
      "--upstream",       "http://127.0.0.1:" + std::to_string(upstream.port()),
      "--upstream-delay", std::to_string(kDelaySeconds),
      "--hello-timeout",  std::to_string(kPageTimeoutSeconds)};
  std::vector<std::string> serve = {STOREFRONT_PATH, "--port", "{port}", "--database",
                                    (dir / "store.sqlite3").string()};
  serve.insert(serve.end(), common.begin(), common.end());
  ServerProcess storefront = ServerProcess::start(serve, 60s);
  std::vector<std::string> work = {
      STOREFRONT_PATH, "worker",
      "--broker-url",  redis_url + "/1",
      "--interval",    std::to_string(kIntervalSeconds),
      "--page-host",   "127.0.0.1:" + std::to_string(storefront.port())};
  work.insert(work.end(), common.begin(), common.end());
  Worker first(work, dir / "worker1.log");
  Worker second(work, dir / "worker2.log");
  ASSERT_TRUE(wait_for_run(first, "hello_page", 30s) || wait_for_run(second, "hello_page", 5s))
      << first.log() << second.log();

  // Readers over five intervals: every answer a page-cache hit.
  const auto calls_before = upstream_calls(upstream.port());
  const auto start = Clock::now();
  int reads = 0;
  while (Clock::now() - start < 5s) {
    auto response = cachekit::testing::fetch(static_cast<std::uint16_t>(storefront.port()), "GET",
                                             "/playground/hello/", {}, {});
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200);
    EXPECT_NE(response->header("Cache-Status").value_or("").find("cachekit; hit"),
              std::string::npos)
        << "read " << reads << " after " << (Clock::now() - start) / 1ms << " ms";
    ++reads;
    std::this_thread::sleep_for(20ms);
  }
  const auto calls = upstream_calls(upstream.port()) - calls_before;

  // One job, run every interval ± 10 % plus its 0.2 s upstream call: 4 to 5 runs in 5 s (±1
  // at the edges; fewer when a loaded machine slows the runs). Each worker running it on its
  // own would make about 8; a call for the page and another for httpbin_result, about 8 too.
  EXPECT_GE(calls, 2) << first.log() << second.log();
  EXPECT_LE(calls, 6) << first.log() << second.log();
  EXPECT_GT(reads, 50);
  // The same runs keep the low-level step's key: the upstream's answer, as JSON text.
  cachekit::Cache cache(*cachekit::make_redis_backend({.locations = {redis_url + "/2"}}),
                        {.key_prefix = "e2e"});
  auto result = cache.get("httpbin_result");
  ASSERT_TRUE(result) << first.log() << second.log();
  EXPECT_FALSE(nlohmann::json::parse(result->view(), nullptr, false).is_discarded());
  EXPECT_EQ(first.terminate(), 0);
  EXPECT_EQ(second.terminate(), 0);
  EXPECT_NE(first.log().find("storefront worker: stopping (SIGTERM)"), std::string::npos);
  std::filesystem::remove_all(dir);
}

// `storefront --refresh-jobs`: the same jobs in the serving process (the broker: its own
// locmem cache), the page stored for the listening address, the runs counted on /metrics.
TEST(WorkerEndToEnd, RefreshJobsInTheServingProcessFillThePageAndCountOnMetrics) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("worker-e2e-serve-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "storefront.toml") << "[storefront]\nseed_products = 50\nseed_orders = 200\n"
                                            "[caches.default]\nbackend = \"locmem\"\n";
  ServerProcess upstream =
      ServerProcess::start({SLOW_UPSTREAM_PATH, "--port", "{port}", "--threads", "16"});
  ServerProcess storefront = ServerProcess::start(
      {STOREFRONT_PATH, "--config", (dir / "storefront.toml").string(), "--port", "{port}",
       "--database", (dir / "store.sqlite3").string(), "--upstream",
       "http://127.0.0.1:" + std::to_string(upstream.port()), "--upstream-delay",
       std::to_string(kDelaySeconds), "--hello-timeout", std::to_string(kPageTimeoutSeconds),
       "--refresh-jobs", "--interval", std::to_string(kIntervalSeconds)},
      60s);
  const auto port = static_cast<std::uint16_t>(storefront.port());
  const std::string counted = "cachekit_background_refreshes_total{job=\"hello_page\"} ";
  const auto deadline = Clock::now() + 30s;
  std::string metrics;
  while (Clock::now() < deadline) {
    auto response = cachekit::testing::fetch(port, "GET", "/metrics", {}, {});
    ASSERT_TRUE(response);
    metrics = response->body;
    if (metrics.find(counted) != std::string::npos &&
        metrics.find(counted + "0\n") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_NE(metrics.find(counted), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find(counted + "0\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("cachekit_background_refresh_failures_total{job=\"hello_page\"} 0\n"),
            std::string::npos)
      << metrics;
  const auto calls_before = upstream_calls(upstream.port());
  auto page = cachekit::testing::fetch(port, "GET", "/playground/hello/", {}, {});
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->header("Cache-Status").value_or("").find("cachekit; hit"), std::string::npos);
  EXPECT_LE(upstream_calls(upstream.port()) - calls_before, 2);  // the jobs' own, if any
  std::filesystem::remove_all(dir);
}

}  // namespace
