// get_many / set_many / erase_many over every kind of input range: ranges of lvalues (read in
// place), ranges that yield temporaries (std::views::transform making std::string), ranges of
// views, and views that are not const-iterable. Keys longer than the small-string buffer make a
// dangling view a heap-use-after-free under ASan.

#include <gtest/gtest.h>

#include <map>
#include <ranges>
#include <string>
#include <utility>
#include <vector>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace cachekit {
namespace {

std::string long_key(int i) { return "a-key-long-enough-to-live-on-the-heap-" + std::to_string(i); }

const std::vector<int> kIds{1, 2, 3, 4, 5, 6, 7, 8};

void fill(Cache& cache) {
  for (int i : kIds) ASSERT_TRUE(cache.set(long_key(i), "value-" + std::to_string(i)));
}

TEST(DanglingKeys, GetManyOverARangeOfTemporaryStrings) {
  Cache cache(make_locmem_backend());
  fill(cache);
  auto got = cache.get_many(kIds | std::views::transform(long_key));
  ASSERT_EQ(got.size(), kIds.size());
  for (int i : kIds) EXPECT_EQ(got.at(long_key(i)).view(), "value-" + std::to_string(i));
}

TEST(DanglingKeys, EraseManyOverARangeOfTemporaryStrings) {
  Cache cache(make_locmem_backend());
  fill(cache);
  EXPECT_EQ(cache.erase_many(kIds | std::views::transform(long_key)), kIds.size());
  for (int i : kIds) EXPECT_FALSE(cache.contains(long_key(i))) << i;
}

TEST(DanglingKeys, SetManyOverARangeOfTemporaryPairs) {
  Cache cache(make_locmem_backend());
  auto items =
      kIds | std::views::transform([](int i) {
        return std::pair{long_key(i), "a-value-long-enough-for-the-heap-" + std::to_string(i)};
      });
  EXPECT_TRUE(cache.set_many(items).empty());
  for (int i : kIds) {
    auto v = cache.get(long_key(i));
    ASSERT_TRUE(v.has_value()) << i;
    EXPECT_EQ(v->view(), "a-value-long-enough-for-the-heap-" + std::to_string(i));
  }
}

TEST(DanglingKeys, SetManyOverTemporaryPairsWithTypedValues) {
  Cache cache(make_locmem_backend());
  auto items = kIds | std::views::transform([](int i) { return std::pair{long_key(i), i * 10}; });
  EXPECT_TRUE(cache.set_many(items).empty());
  for (int i : kIds) EXPECT_EQ(cache.get<int>(long_key(i)), i * 10);
}

TEST(DanglingKeys, ViewsThatAreNotConstIterableWork) {
  Cache cache(make_locmem_backend());
  fill(cache);
  auto even = [](int i) { return i % 2 == 0; };
  // filter_view caches its begin(), so it can only be iterated when not const.
  auto keys = kIds | std::views::filter(even) | std::views::transform(long_key);
  EXPECT_EQ(cache.get_many(keys).size(), kIds.size() / 2);
  EXPECT_EQ(cache.erase_many(keys), kIds.size() / 2);
  EXPECT_EQ(cache.get_many(kIds | std::views::transform(long_key)).size(), kIds.size() / 2);
}

TEST(DanglingKeys, RangesOfHeldStringsAndOfViewsAreReadInPlace) {
  Cache cache(make_locmem_backend());
  fill(cache);
  std::vector<std::string> held;
  for (int i : kIds) held.push_back(long_key(i));
  EXPECT_EQ(cache.get_many(held).size(), kIds.size());
  auto as_views =
      held | std::views::transform([](const std::string& s) { return std::string_view(s); });
  EXPECT_EQ(cache.get_many(as_views).size(), kIds.size());
  std::map<std::string, std::string> items{{long_key(100), "x"}};
  EXPECT_TRUE(cache.set_many(items).empty());
  EXPECT_EQ(cache.erase_many(held), kIds.size());
}

}  // namespace
}  // namespace cachekit
