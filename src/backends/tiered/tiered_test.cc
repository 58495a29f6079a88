// The tiered backend on real stores: its configuration, the TTL bound over SQLite, and the
// Redis change feed — writes by other clients (a raw connection as redis-cli would make,
// another cachekit process through the CLI), a flush, a lost feed, and readers racing a
// writer.
#include <cachekit/backends/locmem.h>
#include <cachekit/backends/redis.h>
#include <cachekit/backends/sql.h>
#include <cachekit/backends/tiered.h>
#include <cachekit/cache.h>
#include <cachekit/caches.h>
#include <cachekit/http/page_cache.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <latch>
#include <string>
#include <thread>

#include "support/backend_wrapper.h"
#include "support/redis_test_support.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::RawRedis;

std::string stat(Backend& backend, std::string_view name) {
  auto stats = backend.stats();
  if (!stats.ok()) return "";
  for (const auto& [k, v] : *stats) {
    if (k == name) return v;
  }
  return "";
}

// Polls `done` (a condition on an external process or on the feed's thread) until it holds.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

std::string value_of(Backend& backend, std::string_view key) {
  auto value = backend.get(key);
  if (!value.ok()) return "<error>";
  if (!value->has_value()) return "<missing>";
  return std::string((*value)->view());
}

std::shared_ptr<Backend> tiered_over_redis(const std::string& url, const std::string& ns) {
  auto redis = make_redis_backend({.locations = {url}, .io_timeout = 2s, .key_namespace = ns});
  EXPECT_TRUE(redis.ok());
  auto tiered = make_tiered_backend({.shared = *redis});
  EXPECT_TRUE(tiered.ok()) << tiered.status().to_string();
  auto& backend = *tiered;
  EXPECT_TRUE(eventually([&] { return stat(*backend, "feed_live") == "yes"; }));
  return backend;
}

// ---- configuration ----

std::filesystem::path scratch(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("cachekit-tiered-" + std::to_string(::getpid()) + "-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(TieredConfig, BuildsBothTiersFromTheCacheTable) {
  auto dir = scratch("config");
  auto made = make_sqlite_backend({.path = dir / "c.db"});
  ASSERT_TRUE(made.ok());
  ASSERT_TRUE(create_cache_table(**made, false).ok());
  auto caches = Caches::from_toml(
      "[caches.default]\nbackend = \"tiered\"\nkey_prefix = \"shop\"\n"
      "[caches.default.options]\nlocal_ttl_ms = 1500\nlocal = { max_entries = 50 }\n"
      "shared = { backend = \"sqlite\", location = \"" +
          (dir / "c.db").string() + "\" }\n",
      "cachekit.toml");
  Cache& cache = caches.default_cache();
  ASSERT_TRUE(cache.set("k", "v"));
  EXPECT_EQ(cache.get<std::string>("k"), "v");
  auto stats = cache.backend().stats();
  ASSERT_TRUE(stats.ok());
  auto has = [&](std::string_view name, std::string_view value) {
    for (const auto& [k, v] : *stats) {
      if (k == name) return v == value;
    }
    return false;
  };
  EXPECT_TRUE(has("coherence", "ttl"));
  EXPECT_TRUE(has("local_ttl_ms", "1500"));
  EXPECT_TRUE(has("shared_hits", "1"));
  EXPECT_TRUE(has("local.max_entries", "50"));
}

TEST(TieredConfig, ErrorsNameTheNestedField) {
  auto error_of = [](const std::string& options) -> std::string {
    try {
      (void)Caches::from_toml("[caches.default]\nbackend = \"tiered\"\noptions = " + options + "\n",
                              "cachekit.toml");
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(error_of("{ local = { max_entries = 5 } }").find("options.shared"), std::string::npos);
  EXPECT_NE(error_of("{ shared = \"redis://127.0.0.1:1/0\", local = { max_entrys = 5 } }")
                .find("field 'options.local.max_entrys'"),
            std::string::npos);
  EXPECT_NE(error_of("{ shared = \"redis://127.0.0.1:1/0\", coherence = \"always\" }")
                .find("field 'options.coherence'"),
            std::string::npos);
  EXPECT_NE(error_of("{ shared = { backend = \"redis\", location = \"redis://h:x\" } }")
                .find("field 'options.shared.location'"),
            std::string::npos);
  EXPECT_NE(error_of("{ shared = \"sqlite:///tmp/x.db\", coherence = \"changes\" }")
                .find("cannot report changes"),
            std::string::npos);
}

// ---- TTL coherence (a shared backend without a change feed) ----

TEST(TieredTtl, AnotherProcessesWriteIsSeenOnceTheLocalCopyExpires) {
  auto dir = scratch("ttl");
  ManualClock clock;
  auto made = make_sqlite_backend({.path = dir / "c.db", .clock = &clock});
  ASSERT_TRUE(made.ok());
  std::shared_ptr<Backend> sqlite = *made;
  ASSERT_TRUE(create_cache_table(*sqlite, false).ok());
  auto reader = make_tiered_backend(
      {.shared = sqlite, .local = {.clock = &clock}, .local_ttl = std::chrono::milliseconds(200)});
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(sqlite->set("k", "v1", Expiry::never()).ok())
      << sqlite->set("k", "v1", Expiry::never()).to_string();
  EXPECT_EQ(value_of(**reader, "k"), "v1");
  ASSERT_TRUE(sqlite->set("k", "v2", Expiry::never()).ok());  // another writer
  EXPECT_EQ(value_of(**reader, "k"), "v1");                   // within local_ttl
  clock.advance(200ms);
  EXPECT_EQ(value_of(**reader, "k"), "v2");
  EXPECT_EQ(stat(**reader, "local_hits"), "1");
}

// ---- the Redis change feed ----

TEST(TieredRedis, AWriteByAnyClientDropsTheLocalCopy) {
  const std::string url = testing::shared_redis_url();
  const std::string ns = testing::unique_namespace("tiered");
  auto backend = tiered_over_redis(url, ns);
  ASSERT_TRUE(backend->set("k", "v1", Expiry::never()).ok());
  // The write's own invalidation may drop the first copy; a later read is then a local hit.
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(value_of(*backend, "k"), "v1");
    return stat(*backend, "local_hits") != "0";
  }));

  RawRedis raw = RawRedis::from_url(url);
  raw.command({"SET", ns + "k", "v2"});
  EXPECT_TRUE(eventually([&] { return value_of(*backend, "k") == "v2"; }));
  EXPECT_EQ(value_of(*backend, "k"), "v2");
  raw.command({"DEL", ns + "k"});
  EXPECT_TRUE(eventually([&] { return value_of(*backend, "k") == "<missing>"; }));
  EXPECT_GE(std::stoi(stat(*backend, "invalidations")), 2);
}

#ifdef CACHEKIT_CLI_PATH
TEST(TieredRedis, AnotherCachekitProcessesWriteDropsTheLocalCopy) {
  const std::string url = testing::shared_redis_url();
  const std::string ns = testing::unique_namespace("tiered-cli");
  const auto config = scratch("cli") / "cachekit.toml";
  std::ofstream(config) << "[caches.default]\nbackend = \"tiered\"\nkey_prefix = \"shop\"\n"
                        << "options = { shared = { backend = \"redis\", location = \"" << url
                        << "\", options = { namespace = \"" << ns << "\" } } }\n";
  auto caches = Caches::from_file(config);
  Cache& cache = caches.default_cache();
  ASSERT_TRUE(eventually([&] { return stat(cache.backend(), "feed_live") == "yes"; }));
  ASSERT_TRUE(cache.set("greeting", std::string("hello")));
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(cache.get<std::string>("greeting"), "hello");
    return stat(cache.backend(), "local_hits") != "0";
  }));

  const std::string command = "env -u CACHEKIT_CACHE_URL '" + std::string(CACHEKIT_CLI_PATH) +
                              "' --config '" + config.string() + "' set greeting bonjour";
  int status = std::system(command.c_str());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << command;
  EXPECT_TRUE(eventually([&] { return cache.get<std::string>("greeting") == "bonjour"; }));
}

// Runs `cachekit --config <config> <args>`; its stdout, or "exit N" when it failed.
std::string cli(const std::filesystem::path& config, const std::string& args) {
  const std::string command = "env -u CACHEKIT_CACHE_URL '" + std::string(CACHEKIT_CLI_PATH) +
                              "' --config '" + config.string() + "' " + args + " 2>/dev/null";
  std::FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "exit -1";
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = ::pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return "exit " + std::to_string(WEXITSTATUS(status));
  }
  return out;
}

TEST(TieredRedis, TheCliListsReadsDeletesAndClearsATieredCache) {
  const std::string url = testing::shared_redis_url();
  const std::string ns = testing::unique_namespace("tiered-admin");
  const auto config = scratch("cli-admin") / "cachekit.toml";
  std::ofstream(config) << "[caches.default]\nbackend = \"tiered\"\nkey_prefix = \"shop\"\n"
                        << "options = { shared = { backend = \"redis\", location = \"" << url
                        << "\", options = { namespace = \"" << ns << "\" } } }\n";
  EXPECT_EQ(cli(config, "set a 1"), "");
  EXPECT_EQ(cli(config, "set b 2 --timeout never"), "");
  EXPECT_EQ(cli(config, "get a"), "1");
  EXPECT_EQ(cli(config, "keys"), "a\nb\n");
  EXPECT_EQ(cli(config, "ttl b"), "never\n");
  EXPECT_EQ(cli(config, "delete a"), "");
  EXPECT_EQ(cli(config, "get a"), "exit 1");
  EXPECT_NE(cli(config, "stats").find("coherence"), std::string::npos);
  RawRedis raw = RawRedis::from_url(url);
  raw.command({"SET", ns + "foreign", "keep"});
  EXPECT_EQ(cli(config, "clear"), "");
  EXPECT_EQ(cli(config, "keys"), "");
  EXPECT_EQ(raw.command({"GET", ns + "foreign"}).str, "keep");  // clear() is scoped to the prefix
  raw.command({"DEL", ns + "foreign"});
}
#endif

TEST(TieredRedis, AFlushDropsEveryLocalCopy) {
  auto server = testing::start_private_redis();
  auto backend = tiered_over_redis(testing::url_of(server), "");
  ASSERT_TRUE(backend->set("a", "1", Expiry::never()).ok());
  ASSERT_TRUE(backend->set("b", "2", Expiry::never()).ok());
  EXPECT_EQ(value_of(*backend, "a"), "1");
  EXPECT_EQ(value_of(*backend, "b"), "2");
  RawRedis raw("127.0.0.1", server.port());
  raw.command({"FLUSHALL"});
  EXPECT_TRUE(eventually([&] {
    return value_of(*backend, "a") == "<missing>" && value_of(*backend, "b") == "<missing>";
  }));
}

// The server dies and comes back empty on the same port; meanwhile the feed is down, the
// local tier is bypassed, and a value written after the restart is read, never the copy
// held before.
TEST(TieredRedis, ALostFeedEmptiesAndBypassesTheLocalTierUntilItIsBack) {
  auto server = testing::start_private_redis();
  auto redis = make_redis_backend({.locations = {testing::url_of(server)},
                                   .connect_timeout = 200ms,
                                   .io_timeout = 200ms,
                                   .retry_after = 200ms});
  ASSERT_TRUE(redis.ok());
  auto tiered = make_tiered_backend({.shared = *redis});
  ASSERT_TRUE(tiered.ok());
  Backend& backend = **tiered;
  ASSERT_TRUE(eventually([&] { return stat(backend, "feed_live") == "yes"; }));
  ASSERT_TRUE(backend.set("k", "before", Expiry::never()).ok());
  ASSERT_TRUE(eventually([&] {
    EXPECT_EQ(value_of(backend, "k"), "before");
    return stat(backend, "local_hits") != "0";
  }));
  const int hits_before = std::stoi(stat(backend, "local_hits"));

  server.kill();
  ASSERT_TRUE(eventually([&] { return stat(backend, "feed_live") == "no"; }));
  EXPECT_NE(value_of(backend, "k"), "before");  // not served from the local tier
  std::this_thread::sleep_for(2s);              // an outage of seconds, not milliseconds
  EXPECT_NE(value_of(backend, "k"), "before");
  server.restart();
  RawRedis raw("127.0.0.1", server.port());
  raw.command({"SET", "k", "after"});
  EXPECT_TRUE(eventually([&] { return value_of(backend, "k") == "after"; }));
  ASSERT_TRUE(eventually([&] { return stat(backend, "feed_live") == "yes"; }));
  EXPECT_TRUE(eventually([&] {  // caching locally again
    EXPECT_EQ(value_of(backend, "k"), "after");
    return std::stoi(stat(backend, "local_hits")) > hits_before;
  }));
  EXPECT_NE(stat(backend, "bypassed_reads"), "0");
}

// Readers fill the local tier while another client writes: once the last write has landed,
// every reader reaches it, however their fills interleaved with the invalidations.
TEST(TieredRedis, ConcurrentFillsNeverOutliveTheLastWrite) {
  const std::string url = testing::shared_redis_url();
  const std::string ns = testing::unique_namespace("tiered-race");
  auto backend = tiered_over_redis(url, ns);
  constexpr int kWrites = 2000;
  std::latch start(3);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    RawRedis raw = RawRedis::from_url(url);
    start.arrive_and_wait();
    for (int i = 1; i <= kWrites; ++i) raw.command({"SET", ns + "k", std::to_string(i)});
    written.store(true);
  });
  auto reader = [&](bool& reached) {
    start.arrive_and_wait();
    while (!written.load()) (void)backend->get("k");
    reached = eventually([&] { return value_of(*backend, "k") == std::to_string(kWrites); });
  };
  bool first = false, second = false;
  std::thread a(reader, std::ref(first)), b(reader, std::ref(second));
  writer.join();
  a.join();
  b.join();
  EXPECT_TRUE(first);
  EXPECT_TRUE(second);
  EXPECT_EQ(value_of(*backend, "k"), std::to_string(kWrites));
}

// The race itself, made to happen: a reader's shared read has returned the old value (the
// wrapper holds its ttl() half of get_entry, which runs after get()) when a write of this
// process lands and drops the local copy; the reader then fills the old value. The fill must
// be dropped, or the local tier would serve the old value until local_ttl passes.
TEST(TieredFill, AConcurrentWriteDropsTheFillOfAValueReadBeforeIt) {
  auto shared = std::make_shared<testing::BackendWrapper>(
      make_locmem_backend(LocmemOptions{.max_entries = 100}));
  auto made = make_tiered_backend(
      TieredOptions{.shared = shared, .coherence = TierCoherence::kTtl, .local_ttl = 60s});
  ASSERT_TRUE(made.ok()) << made.status().message();
  Backend& tiers = **made;
  ASSERT_TRUE(tiers.set("k", "old", Expiry::never()).ok());
  auto gate = std::make_shared<testing::Gate>();
  shared->hold(testing::Op::kTtl, gate);
  std::string read_by_reader;
  std::thread reader([&] { read_by_reader = value_of(tiers, "k"); });
  while (gate->waiting() == 0) std::this_thread::yield();  // its get() has read "old"
  shared->hold(testing::Op::kTtl, nullptr);                // later calls pass
  ASSERT_TRUE(tiers.set("k", "new", Expiry::never()).ok());
  gate->open();
  reader.join();
  EXPECT_EQ(read_by_reader, "old");  // it read before the write: fine for that call
  // Every read after the write returned sees the new value, not a filled "old".
  EXPECT_EQ(value_of(tiers, "k"), "new");
  EXPECT_EQ(value_of(tiers, "k"), "new");
  EXPECT_EQ(stat(tiers, "fills_dropped"), "1");
}

// A page served from a tiered cache over Redis: once the local tier holds the header list and
// the page, the hit is answered by in-process reads alone (what a server's io thread may do);
// before that, and after another client deletes the page, those reads decline and the full
// path answers.
TEST(TieredPages, AHitFromTheLocalTierNeedsNoRoundTripAndADeletionEndsIt) {
  const std::string url = testing::shared_redis_url();
  const std::string ns = testing::unique_namespace("tiered-pages");
  Cache cache(tiered_over_redis(url, ns), CacheOptions{.key_prefix = "pages"});
  http::PageCache pages(http::PageCacheOptions{.cache = &cache});
  http::Request request;
  request.method = "GET";
  request.path = "/hello/";
  request.headers.add("Host", "www.example.com");
  int calls = 0;
  http::Handler hello = [&](http::Request&) {
    ++calls;
    auto response = http::Response::text("hello");
    response.headers.set("Cache-Control", "max-age=300");
    return response;
  };
  EXPECT_FALSE(pages.fetch_in_process(request).has_value());  // nothing stored yet
  (void)pages.serve(request, hello);
  ASSERT_EQ(calls, 1);
  ASSERT_TRUE(pages.hits_may_be_in_process());
  // The full path fills the local tier. The store's own writes come back as invalidations,
  // possibly after a fill, so a copy may be dropped again: measure once both copies stay.
  Backend& tiers = cache.backend();
  ASSERT_TRUE(eventually([&] {
    EXPECT_TRUE(pages.fetch(request).has_value());
    const std::string shared_before =
        stat(tiers, "shared_hits") + "/" + stat(tiers, "shared_misses");
    const int local_before = std::stoi(stat(tiers, "local_hits"));
    auto hit = pages.fetch_in_process(request);
    if (!hit.has_value()) return false;
    EXPECT_EQ(hit->body.view(), "hello");
    // Two local reads (the header list and the page), none of the shared store.
    EXPECT_EQ(std::stoi(stat(tiers, "local_hits")), local_before + 2);
    EXPECT_EQ(stat(tiers, "shared_hits") + "/" + stat(tiers, "shared_misses"), shared_before);
    return true;
  }));
  EXPECT_EQ(calls, 1);

  RawRedis raw = RawRedis::from_url(url);
  auto keys = raw.command({"KEYS", ns + "*"});
  for (const auto& key : keys.elements) {
    if (key.str.find("cache_page") != std::string::npos) raw.command({"DEL", key.str});
  }
  EXPECT_TRUE(eventually([&] { return !pages.fetch_in_process(request).has_value(); }));
  EXPECT_FALSE(pages.fetch(request).has_value());
}

}  // namespace
}  // namespace cachekit
