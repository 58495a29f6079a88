// BackendWrapper forwards what it is not told to break, and breaks exactly what it is told to.

#include "support/backend_wrapper.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "support/status_matchers.h"

namespace cachekit::testing {
namespace {

std::shared_ptr<BackendWrapper> wrapped_locmem(BackendWrapperOptions options = {}) {
  return std::make_shared<BackendWrapper>(make_locmem_backend(), std::move(options));
}

TEST(BackendWrapper, ForwardsEveryCallAndCountsIt) {
  auto store = wrapped_locmem();
  EXPECT_EQ(store->info().name, "locmem");
  ASSERT_OK(store->set("k", "v", Expiry::never()));
  auto got = store->get("k");
  ASSERT_OK(got);
  EXPECT_EQ((*got)->view(), "v");
  EXPECT_EQ(*store->add("k", "w", Expiry::never()), false);
  EXPECT_STATUS(store->incr("n", 1), StatusCode::kNotFound);
  auto keys = store->keys("*");
  ASSERT_OK(keys);
  EXPECT_EQ(*keys, std::vector<std::string>{"k"});
  EXPECT_EQ(store->calls(Op::kSet), 1);
  EXPECT_EQ(store->calls(Op::kGet), 1);
  EXPECT_EQ(store->calls(Op::kKeys), 1);
  EXPECT_EQ(store->calls(Op::kAny), 5);
  store->reset_calls();
  EXPECT_EQ(store->calls(Op::kAny), 0);
}

TEST(BackendWrapper, DownFailsEveryCallUntilItComesBack) {
  auto store = wrapped_locmem();
  ASSERT_OK(store->set("k", "v", Expiry::never()));
  store->set_down(true);
  EXPECT_STATUS(store->get("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(store->set("k", "w", Expiry::never()), StatusCode::kUnavailable);
  EXPECT_STATUS(store->clear(), StatusCode::kUnavailable);
  EXPECT_STATUS(store->keys("*"), StatusCode::kUnavailable);
  store->set_down(false);
  EXPECT_EQ((*store->get("k"))->view(), "v") << "failed calls never reached the store";
}

TEST(BackendWrapper, FailsOnlyTheNthCallOfAnOperation) {
  auto store = wrapped_locmem();
  store->fail_calls(Op::kSet, 2);
  EXPECT_OK(store->set("a", "1", Expiry::never()));
  EXPECT_OK(store->get("a"));
  EXPECT_STATUS(store->set("b", "2", Expiry::never()), StatusCode::kUnavailable);
  EXPECT_OK(store->set("c", "3", Expiry::never()));
  EXPECT_FALSE(store->get("b")->has_value());
}

TEST(BackendWrapper, FailsARangeOfAnyCallsWithTheGivenCode) {
  auto store = wrapped_locmem();
  store->fail_calls(Op::kAny, 2, 3, StatusCode::kDeadlineExceeded);
  EXPECT_OK(store->get("a"));
  EXPECT_STATUS(store->set("a", "1", Expiry::never()), StatusCode::kDeadlineExceeded);
  EXPECT_STATUS(store->ttl("a"), StatusCode::kDeadlineExceeded);
  EXPECT_OK(store->get("a"));
  store->clear_faults();
  store->reset_calls();
  store->fail_calls(Op::kAny, 1);
  EXPECT_STATUS(store->get("a"), StatusCode::kUnavailable);
}

TEST(BackendWrapper, BatchFormsApplyRulesPerKey) {
  auto store = wrapped_locmem();
  store->fail_calls(Op::kGet, 2);
  std::vector<std::string_view> keys{"a", "b", "c"};
  EXPECT_STATUS(store->get_many(keys), StatusCode::kUnavailable);
  EXPECT_EQ(store->calls(Op::kGet), 2) << "get_many stopped at the failing key";
}

TEST(BackendWrapper, HiddenKeysAreUnimplementedAndDeclared) {
  auto store = wrapped_locmem({.name = "nokeys", .hide_keys = true});
  EXPECT_EQ(store->info().name, "nokeys");
  EXPECT_FALSE(store->info().supports_keys);
  EXPECT_STATUS(store->keys("*"), StatusCode::kUnimplemented);
  EXPECT_EQ(store->calls(Op::kKeys), 1);
}

TEST(BackendWrapper, KeyPolicyOverridesTheWrappedOne) {
  auto store = wrapped_locmem({.key_policy = KeyPolicy::kRefuse});
  EXPECT_EQ(store->info().key_policy, KeyPolicy::kRefuse);
}

TEST(BackendWrapper, ConcurrentCallsWaitAtTheGateUntilItOpens) {
  auto store = wrapped_locmem();
  ASSERT_OK(store->set("k", "v", Expiry::never()));
  auto gate = std::make_shared<Gate>();
  store->hold(Op::kGet, gate);
  constexpr int kThreads = 4;
  std::vector<std::jthread> threads;
  std::atomic<int> done{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      EXPECT_OK(store->get("k"));
      ++done;
    });
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (gate->waiting() < kThreads && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  ASSERT_EQ(gate->waiting(), kThreads);
  EXPECT_EQ(done, 0) << "no call passes a closed gate";
  EXPECT_OK(store->set("k", "w", Expiry::never())) << "other operations are not held";
  gate->open();
  threads.clear();
  EXPECT_EQ(done, kThreads);
  EXPECT_EQ(store->calls(Op::kGet), kThreads);
}

}  // namespace
}  // namespace cachekit::testing
