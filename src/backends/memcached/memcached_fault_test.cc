// Fault tests on PRIVATE memcached processes (the shared test servers are never disturbed):
// a killed server, a frozen (SIGSTOP) server, a restarted one, everything down. Time bounds
// are correctness properties measured around each call — a cache that fails open is useless
// if "failing" takes seconds — with margins wide enough for a loaded machine or ASan.
#include <cachekit/backends/memcached.h>
#include <cachekit/cache.h>
#include <gtest/gtest.h>
#include <libmemcached/memcached.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/memcached_server.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;
using testing::location_of;
using testing::ServerProcess;
using testing::start_memcached;
using testing::stop_and_wait;

constexpr Millis kTimeout = 100ms;
// What a call against a failing server may take: its timeout plus scheduling noise.
constexpr Millis kBounded = 600ms;
// What a call that must not touch the network (a skipped server) may take.
constexpr Millis kFast = 60ms;

std::string error_text(StatusCode code) { return "<" + std::string(status_code_name(code)) + ">"; }

template <class F>
Millis timed(F&& f) {
  auto start = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - start);
}

class MemcachedFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = make(1);
    // A plain libmemcached client with the same ring tells which server owns a key.
    ring_ = memcached_create(nullptr);
    memcached_behavior_set(ring_, MEMCACHED_BEHAVIOR_KETAMA, 1);
    for (const ServerProcess* s : {&a_, &b_}) {
      memcached_server_add(ring_, "127.0.0.1", static_cast<in_port_t>(s->port()));
    }
  }
  void TearDown() override { memcached_free(ring_); }

  std::shared_ptr<Backend> make(unsigned pool_size) {
    auto backend = make_memcached_backend({.servers = {location_of(a_), location_of(b_)},
                                           .connect_timeout = kTimeout,
                                           .io_timeout = kTimeout,
                                           .pool_size = pool_size,
                                           .pool_wait = 2s,
                                           .down_after_failures = 2,
                                           .retry_after = 1s});
    EXPECT_OK(backend);
    return *backend;
  }
  // The n-th key (of a family) that lives on `server` while both servers are up.
  std::string key_on(const ServerProcess& server, int n, std::string_view family = "k") {
    for (int i = 0;; ++i) {
      std::string key = std::string(family) + std::to_string(i);
      memcached_return_t rc{};
      auto* owner = memcached_server_by_key(ring_, key.data(), key.size(), &rc);
      if (memcached_server_port(owner) == server.port() && n-- == 0) return key;
    }
  }
  // Reads `key` straight from `server`, bypassing the ring.
  std::string on_server(const ServerProcess& server, const std::string& key) {
    memcached_st* direct = memcached_create(nullptr);
    memcached_server_add(direct, "127.0.0.1", static_cast<in_port_t>(server.port()));
    std::size_t length = 0;
    std::uint32_t flags = 0;
    memcached_return_t rc{};
    char* value = memcached_get(direct, key.data(), key.size(), &length, &flags, &rc);
    std::string out = value != nullptr ? std::string(value, length) : "<missing>";
    std::free(value);
    memcached_free(direct);
    return out;
  }
  std::string value_of(std::string_view key) {
    auto v = backend_->get(key);
    if (!v.ok()) return error_text(v.code());
    return v->has_value() ? (*v)->str() : "<missing>";
  }
  // Retries `f` until it returns true or `limit` passes.
  static bool eventually(const std::function<bool()>& f, Millis limit = 10s) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  ServerProcess a_ = start_memcached();
  ServerProcess b_ = start_memcached();
  memcached_st* ring_ = nullptr;
  std::shared_ptr<Backend> backend_;
};

TEST_F(MemcachedFaults, KilledServerFailsFastAndIsEjectedThenRetriedWhenItReturns) {
  std::string on_a = key_on(a_, 0), on_b = key_on(b_, 0);
  ASSERT_OK(backend_->set(on_a, "a", {}));
  ASSERT_OK(backend_->set(on_b, "b", {}));
  b_.kill();
  // B's keys fail fast; after down_after_failures failed retries (retry_after apart) the
  // ring drops B and its keys move to A. Every call meanwhile is bounded, and A keeps working.
  bool moved = eventually([&] {
    std::string got;
    EXPECT_LT(timed([&] { got = value_of(on_b); }), kBounded);
    EXPECT_NE(got, "b");
    EXPECT_EQ(value_of(on_a), "a") << "the other server keeps working";
    return got == "<missing>";
  });
  ASSERT_TRUE(moved) << "B was never ejected";
  ASSERT_OK(backend_->set(on_b, "moved", {}));
  EXPECT_EQ(value_of(on_b), "moved");
  EXPECT_EQ(on_server(a_, on_b), "moved");

  b_.restart();  // same port, empty
  // After retry_after the ring takes B back: writes to B's keys land on B again.
  EXPECT_TRUE(eventually([&] {
    return backend_->set(on_b, "back", {}).ok() && on_server(b_, on_b) == "back";
  })) << "B was never retried";
  EXPECT_EQ(value_of(on_b), "back");
  EXPECT_EQ(value_of(on_a), "a");
}

TEST_F(MemcachedFaults, FrozenServerIsBoundedThenSkippedAndAnswersRightAfterwards) {
  std::vector<std::string> on_b;
  for (int i = 0; i < 4; ++i) {
    on_b.push_back(key_on(b_, i));
    ASSERT_OK(backend_->set(on_b.back(), "v" + std::to_string(i), {}));
  }
  std::string on_a = key_on(a_, 0);
  ASSERT_OK(backend_->set(on_a, "a", {}));
  stop_and_wait(b_);
  // Two timeouts in a row (down_after_failures) ...
  for (int i = 0; i < 2; ++i) {
    std::string got;
    Millis took = timed([&] { got = value_of(on_b[i]); });
    EXPECT_GE(took, kTimeout - 10ms);
    EXPECT_LT(took, kBounded);
    EXPECT_EQ(got, error_text(StatusCode::kDeadlineExceeded));
  }
  // ... and B's keys fail at once: no call waits for a frozen server any more.
  for (const auto& key : on_b) {
    EXPECT_LT(timed([&] { EXPECT_EQ(value_of(key), error_text(StatusCode::kUnavailable)); }),
              kFast);
    EXPECT_LT(timed([&] { EXPECT_STATUS(backend_->ttl(key), StatusCode::kUnavailable); }), kFast);
    EXPECT_LT(timed([&] { EXPECT_FALSE(backend_->incr(key, -1).ok()); }), kFast);
  }
  EXPECT_EQ(value_of(on_a), "a");
  b_.resume();
  // After retry_after one call probes B, and every reply is the one asked for: the replies
  // to the timed-out requests were not left on a connection to be read later.
  EXPECT_TRUE(eventually([&] { return value_of(on_b[3]) == "v3"; }));
  for (int i = 0; i < 4; ++i) EXPECT_EQ(value_of(on_b[i]), "v" + std::to_string(i));
  EXPECT_EQ(backend_->ttl(on_b[0])->is_never(), true);
}

TEST_F(MemcachedFaults, MetaSideChannelIsBoundedOnAFrozenServer) {
  std::string on_b = key_on(b_, 0);
  ASSERT_OK(backend_->set(on_b, "-5", {}));
  stop_and_wait(b_);
  Result<Ttl> ttl = Ttl::missing();
  EXPECT_LT(timed([&] { ttl = backend_->ttl(on_b); }), kBounded);
  EXPECT_STATUS(ttl, StatusCode::kDeadlineExceeded);
  Result<std::int64_t> incr = 0;
  EXPECT_LT(timed([&] { incr = backend_->incr(on_b, -1); }), kBounded);
  EXPECT_FALSE(incr.ok());
  b_.resume();
  EXPECT_TRUE(eventually([&] { return backend_->incr(on_b, -1).ok(); }));
  EXPECT_EQ(value_of(on_b), "-6") << "exactly one decrement took effect";
}

TEST_F(MemcachedFaults, RestartedServerIsUsedAgainWithoutAnyIntervention) {
  std::string on_b = key_on(b_, 0);
  ASSERT_OK(backend_->set(on_b, "before", {}));
  ASSERT_OK(backend_->ttl(on_b));  // leaves an idle side-channel connection to B
  b_.kill();
  (void)value_of(on_b);
  b_.restart();
  EXPECT_TRUE(eventually(
      [&] { return backend_->set(on_b, "after", {}).ok() && on_server(b_, on_b) == "after"; }));
  EXPECT_EQ(value_of(on_b), "after");
  // That connection died with the old process; the first side-channel call still succeeds.
  auto ttl = backend_->ttl(on_b);
  EXPECT_OK(ttl);
  EXPECT_STATUS(backend_->incr(on_b, -1), StatusCode::kFailedPrecondition) << "not a number";
}

TEST_F(MemcachedFaults, EveryCallIsBoundedAndFailsOpenWhenEverythingIsDown) {
  a_.kill();
  b_.kill();
  Cache cache(backend_);
  std::vector<std::pair<std::string, std::function<bool()>>> calls = {
      {"get", [&] { return !cache.get("k").has_value(); }},
      {"set", [&] { return !cache.set("k", "v"); }},
      {"add", [&] { return !cache.add("k", "v"); }},
      {"touch", [&] { return !cache.touch("k", 10); }},
      {"erase", [&] { return !cache.erase("k"); }},
      {"incr", [&] { return !cache.incr("k").ok(); }},
      {"decr", [&] { return !cache.decr("k").ok(); }},
      {"ttl", [&] { return cache.ttl("k").is_missing(); }},
      {"get_many",
       [&] {
         return cache.get_many({"a", "b", "c"}).empty();
       }},
      {"set_many",
       [&] {
         return cache.set_many(std::map<std::string, std::string>{{"a", "1"}}).size() == 1;
       }},
      {"clear", [&] { return !cache.clear(); }},
      {"stats", [&] { return !backend_->stats().ok(); }},
  };
  for (int round = 0; round < 2; ++round) {
    for (const auto& [name, call] : calls) {
      bool failed_open = false;
      EXPECT_LT(timed([&] { failed_open = call(); }), kBounded) << name;
      EXPECT_TRUE(failed_open) << name;
    }
  }
  EXPECT_GE(cache.stats().errors, calls.size());
}

TEST_F(MemcachedFaults, ConcurrentCallsOnAFrozenServerAreEachBounded) {
  backend_ = make(4);
  std::vector<std::string> on_b;
  for (int i = 0; i < 8; ++i) on_b.push_back(key_on(b_, i));
  for (const auto& key : on_b) ASSERT_OK(backend_->set(key, "v", {}));
  stop_and_wait(b_);
  std::vector<std::thread> threads;
  std::vector<Millis> slowest(4, 0ms);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        slowest[t] = std::max(slowest[t], timed([&] { (void)backend_->get(on_b[(t + i) % 8]); }));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (Millis m : slowest) EXPECT_LT(m, kBounded);
  b_.resume();
  EXPECT_TRUE(eventually([&] { return value_of(on_b[0]) == "v"; }));
}

}  // namespace
}  // namespace cachekit
