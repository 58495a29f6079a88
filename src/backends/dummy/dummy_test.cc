// The dummy backend's whole contract: it stores nothing and answers like Django's DummyCache.
// The behaviour every backend shares is in tests/conformance.
#include "cachekit/backends/dummy.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "support/status_matchers.h"

namespace cachekit {
namespace {

TEST(DummyBackend, StoresNothingAndAnswersLikeDjangosDummyCache) {
  auto b = make_dummy_backend();
  EXPECT_OK(b->set("k", "v", Expiry::never()));
  EXPECT_EQ(*b->get("k"), std::nullopt);
  EXPECT_TRUE(*b->add("k", "v", Expiry::never()));
  EXPECT_FALSE(*b->touch("k", Expiry::never()));
  EXPECT_FALSE(*b->erase("k"));
  EXPECT_FALSE(*b->contains("k"));
  EXPECT_STATUS(b->incr("k", 1), StatusCode::kNotFound);
  EXPECT_OK(b->clear());
  EXPECT_EQ(*b->ttl("k"), Ttl::missing());
  const std::vector<std::string_view> keys{"a", "b"};
  EXPECT_EQ(*b->get_many(keys), (std::vector<std::optional<Bytes>>(2)));
  const std::vector<KeyValue> items{{"a", "1"}};
  EXPECT_TRUE(b->set_many(items, Expiry::never())->empty());
  EXPECT_EQ(*b->erase_many(keys), 0u);
  EXPECT_TRUE(b->keys("*")->empty());
  EXPECT_STATUS(b->stats(), StatusCode::kUnimplemented);
  EXPECT_EQ(b->info().name, "dummy");
  EXPECT_FALSE(b->info().stores_values);
  EXPECT_TRUE(b->info().supports_keys);
  EXPECT_FALSE(b->info().supports_stats);
}

}  // namespace
}  // namespace cachekit
