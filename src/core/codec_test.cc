// Codec<T>::decode is noexcept: whatever a user's from_json throws must become a miss, never
// std::terminate.

#include "cachekit/codec.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"

namespace decode_test {

struct ThrowsRuntimeError {
  int value = 0;
};
void to_json(nlohmann::json& j, const ThrowsRuntimeError& v) { j = v.value; }
void from_json(const nlohmann::json&, ThrowsRuntimeError&) {
  throw std::runtime_error("this from_json always fails");
}

struct ThrowsInt {
  int value = 0;
};
void to_json(nlohmann::json& j, const ThrowsInt& v) { j = v.value; }
void from_json(const nlohmann::json&, ThrowsInt&) { throw 42; }

}  // namespace decode_test

namespace cachekit {
namespace {

TEST(CodecDecodeThrows, ARuntimeErrorFromFromJsonIsNotAValue) {
  EXPECT_FALSE(Codec<decode_test::ThrowsRuntimeError>::decode("1", Serializer::kJson));
  EXPECT_FALSE(Codec<decode_test::ThrowsRuntimeError>::decode("\x01", Serializer::kMsgpack));
}

TEST(CodecDecodeThrows, AThrownIntIsNotAValue) {
  EXPECT_FALSE(Codec<decode_test::ThrowsInt>::decode("1", Serializer::kJson));
}

TEST(CodecDecodeThrows, TypedGetIsAMissCountedAsAnError) {
  Cache cache(make_locmem_backend(), {.max_error_logs_per_second = 0});
  ASSERT_TRUE(cache.set("k", decode_test::ThrowsRuntimeError{7}));
  EXPECT_FALSE(cache.get<decode_test::ThrowsRuntimeError>("k").has_value());
  EXPECT_FALSE(cache.get<decode_test::ThrowsInt>("k").has_value());
  EXPECT_EQ(cache.stats().errors, 2u);
  int calls = 0;
  auto value = cache.get_or_set("k", [&] {
    ++calls;
    return decode_test::ThrowsInt{3};
  });
  EXPECT_EQ(value.value, 3) << "a value that cannot be read back is recomputed";
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace cachekit

namespace cachekit {
namespace {

TEST(CodecIntegers, TrailingSpacesOfAPaddedCounterAreIgnoredOthersAreNot) {
  EXPECT_EQ(Codec<long>::decode("998 ", Serializer::kJson), 998);
  EXPECT_EQ(Codec<int>::decode("8   ", Serializer::kJson), 8);
  EXPECT_EQ(Codec<long>::decode("-2", Serializer::kJson), -2);
  EXPECT_FALSE(Codec<long>::decode(" 998", Serializer::kJson));
  EXPECT_FALSE(Codec<long>::decode("99 8", Serializer::kJson));
  EXPECT_FALSE(Codec<long>::decode("   ", Serializer::kJson));
}

}  // namespace
}  // namespace cachekit
