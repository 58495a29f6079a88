// Cache façade rules that do not depend on the store: key making, key validation, the
// failure policy (fail open, strict errors, bounded logging) and a fault matrix.

#include "cachekit/cache.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <type_traits>
#include <utility>

#include "cachekit/backends/locmem.h"
#include "support/backend_wrapper.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;

using testing::BackendWrapper;
using testing::Op;

TEST(MakeKey, JoinsPrefixVersionAndKey) {
  EXPECT_EQ(default_key_function("foo", "", 1), ":1:foo");
  EXPECT_EQ(default_key_function("foo", "shop", 2), "shop:2:foo");
  Cache cache(make_locmem_backend(), {.key_prefix = "p", .version = 3});
  EXPECT_EQ(cache.make_key("k"), "p:3:k");
  EXPECT_EQ(cache.make_key("k", 9), "p:9:k");
}

TEST(KeyProblem, UsesDjangosWords) {
  EXPECT_EQ(key_problem(":1:fine"), "");
  std::string long_key(251, 'a');
  EXPECT_EQ(key_problem(long_key), "Cache key will cause errors if used with memcached: '" +
                                       long_key + "' (longer than 250)");
  EXPECT_EQ(key_problem(":1:a b"),
            "Cache key contains characters that will cause errors if used with memcached: "
            "':1:a b'");
  EXPECT_NE(key_problem(std::string(":1:a\x7f", 5)), "");
  EXPECT_NE(key_problem(std::string(":1:a\0", 5)), "");
  EXPECT_EQ(key_problem(":1:ключ"), "");  // non-ASCII is fine
  EXPECT_EQ(key_problem(std::string(250, 'a')), "");
}

TEST(Cache, RefusingBackendRejectsHostileKeysWithAReason) {
  auto backend = std::make_shared<BackendWrapper>(
      make_locmem_backend(), testing::BackendWrapperOptions{.key_policy = KeyPolicy::kRefuse});
  Cache cache(backend);
  Status s = cache.strict().set("has space", "v");
  EXPECT_STATUS(s, StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("':1:has space'"), std::string::npos);
  EXPECT_FALSE(cache.set("has space", "v"));
  EXPECT_EQ(backend->calls(Op::kAny), 0) << "a refused key must never reach the store";
}

TEST(Cache, ConstructionRejectsBadConfiguration) {
  EXPECT_THROW(Cache(nullptr), std::invalid_argument);
  EXPECT_THROW(Cache(make_locmem_backend(), {.default_timeout = Timeout()}), std::invalid_argument);
}

TEST(Cache, FailsOpenWhenTheStoreIsDown) {
  auto backend = std::make_shared<BackendWrapper>(make_locmem_backend());
  Cache cache(backend, {.max_error_logs_per_second = 0});
  cache.set("k", "v");
  backend->set_down(true);
  EXPECT_FALSE(cache.get("k").has_value());
  EXPECT_FALSE(cache.set("k", "v2"));
  EXPECT_FALSE(cache.add("new", "v"));
  EXPECT_FALSE(cache.erase("k"));
  EXPECT_FALSE(cache.contains("k"));
  EXPECT_FALSE(cache.touch("k"));
  EXPECT_TRUE(cache.ttl("k").is_missing());
  EXPECT_TRUE(cache.get_many({"k"}).empty());
  EXPECT_EQ(cache.set_many(std::map<std::string, std::string>{{"a", "1"}}),
            std::vector<std::string>{"a"});
  EXPECT_FALSE(cache.clear());
  EXPECT_STATUS(cache.incr("k"), StatusCode::kUnavailable);
  EXPECT_EQ(cache.stats().errors, 11u);
  backend->set_down(false);
  EXPECT_EQ(cache.get("k")->view(), "v") << "service resumes when the store returns";
}

TEST(Cache, StrictCallsReportTheStoreError) {
  auto backend = std::make_shared<BackendWrapper>(make_locmem_backend());
  Cache cache(backend, {.max_error_logs_per_second = 0});
  backend->set_down(true);
  StrictCache strict = cache.strict();
  EXPECT_STATUS(strict.get("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(strict.set("k", "v"), StatusCode::kUnavailable);
  EXPECT_STATUS(strict.add("k", "v"), StatusCode::kUnavailable);
  EXPECT_STATUS(strict.ttl("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(strict.clear(), StatusCode::kUnavailable);
}

// A const Cache hands out only the strict reads; writes need a Cache that is not const.
static_assert(std::is_same_v<decltype(std::declval<const Cache&>().strict()), ConstStrictCache>);
static_assert(std::is_same_v<decltype(std::declval<Cache&>().strict()), StrictCache>);

TEST(Cache, StrictReadsOfAConstCacheReportTheStoreError) {
  auto backend = std::make_shared<BackendWrapper>(make_locmem_backend());
  Cache cache(backend, {.max_error_logs_per_second = 0});
  ASSERT_TRUE(cache.set("k", "v"));
  const Cache& reader = cache;
  EXPECT_EQ(reader.strict().get("k")->value_or(Bytes()), "v");
  backend->set_down(true);
  EXPECT_STATUS(reader.strict().get("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(reader.strict().contains("k"), StatusCode::kUnavailable);
  EXPECT_STATUS(reader.strict().get_many({"k"}), StatusCode::kUnavailable);
}

TEST(Cache, GetOrSetAnswersWhicheverBackendCallFails) {
  // Fault matrix: fail the Nth store call for every N; the caller always gets the value.
  for (int n = 1; n <= 4; ++n) {
    auto backend = std::make_shared<BackendWrapper>(make_locmem_backend());
    backend->fail_calls(Op::kAny, n);
    Cache cache(backend, {.max_error_logs_per_second = 0});
    EXPECT_EQ(cache.get_or_set("k", [] { return std::string("fresh"); }).view(), "fresh")
        << "failing call " << n;
    EXPECT_EQ(cache.get_or_set("n", [] { return 7; }), 7) << "failing call " << n;
  }
}

TEST(Cache, FailureLoggingIsRateLimited) {
  std::ostringstream out;
  spdlog::drop("cachekit");
  spdlog::register_logger(std::make_shared<spdlog::logger>(
      "cachekit", std::make_shared<spdlog::sinks::ostream_sink_st>(out)));
  auto backend = std::make_shared<BackendWrapper>(make_locmem_backend());
  backend->set_down(true);
  Cache cache(backend, {.alias = "pages", .max_error_logs_per_second = 3});
  for (int i = 0; i < 100; ++i) (void)cache.get("k");
  spdlog::drop("cachekit");
  std::string log = out.str();
  auto lines = std::count(log.begin(), log.end(), '\n');
  EXPECT_EQ(lines, 3) << log;
  EXPECT_NE(log.find("cache 'pages': get failed: unavailable: injected fault"), std::string::npos);
  EXPECT_EQ(cache.stats().errors, 100u);
}

TEST(Cache, TypedGetOfAnUnparsableIntegerIsAMiss) {
  Cache cache(make_locmem_backend());
  cache.set("n", "12x");
  EXPECT_FALSE(cache.get<int>("n").has_value());
  cache.set("n", "99999999999");
  EXPECT_FALSE(cache.get<int>("n").has_value()) << "out of range for int";
  EXPECT_EQ(cache.get<std::int64_t>("n"), 99999999999);
}

// nlohmann::json refuses to write a string that is not UTF-8 (type_error 316): a typed write
// of such a value must fail like a store error, not throw through the fail-open API.
TEST(Cache, TypedWriteOfAValueItsCodecRefusesFailsWithoutThrowing) {
  Cache cache(make_locmem_backend(), {.max_error_logs_per_second = 0});
  const std::vector<std::string> not_utf8{"caf\xe9"};
  bool stored = true;
  EXPECT_NO_THROW(stored = cache.set("k", not_utf8));
  EXPECT_FALSE(stored);
  EXPECT_NO_THROW(stored = cache.add("k", not_utf8));
  EXPECT_FALSE(stored);
  EXPECT_FALSE(cache.contains("k"));
  std::vector<std::string> refused;
  const std::vector<std::pair<std::string, std::vector<std::string>>> items{{"bad", not_utf8},
                                                                            {"good", {"ok"}}};
  EXPECT_NO_THROW(refused = cache.set_many(items));
  EXPECT_EQ(refused, std::vector<std::string>{"bad"});
  EXPECT_EQ(cache.get<std::vector<std::string>>("good"), std::vector<std::string>{"ok"});
  EXPECT_EQ(cache.stats().errors, 3u);
}

// ---- optional compression (compress_min_bytes) ----

// The bytes the store holds under a caller's key (default prefix and version).
std::string stored_form(Backend& backend, std::string_view key) {
  auto v = backend.get(":1:" + std::string(key));
  return v.ok() && v->has_value() ? std::string((*v)->view()) : "<missing>";
}

const std::string kZstdMagic("\x28\xB5\x2F\xFD", 4);

TEST(Compression, LargeValuesAreStoredAsZstdFramesAndReadBackExactly) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.compress_min_bytes = 64});
  std::string page(10'000, 'a');
  for (std::size_t i = 0; i < page.size(); i += 7) page[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(cache.set("page", page));
  std::string stored = stored_form(*backend, "page");
  EXPECT_EQ(stored.substr(0, 4), kZstdMagic);
  EXPECT_LT(stored.size(), page.size() / 4);
  EXPECT_EQ(cache.get("page")->view(), page);
  ASSERT_TRUE(cache.add("page2", page));
  EXPECT_EQ(stored_form(*backend, "page2").substr(0, 4), kZstdMagic);
  EXPECT_EQ(cache.get("page2")->view(), page);
}

TEST(Compression, SmallIncompressibleAndIntegerValuesAreStoredAsGiven) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.compress_min_bytes = 8});
  cache.set("small", "tiny");
  EXPECT_EQ(stored_form(*backend, "small"), "tiny");
  // Long enough, but a decimal integer: incr must keep working on the stored text.
  cache.set("counter", "1000000000000");
  EXPECT_EQ(stored_form(*backend, "counter"), "1000000000000");
  EXPECT_EQ(*cache.incr("counter", 5), 1000000000005);
  // Nothing to gain: kept as given.
  std::string noise;
  for (int i = 0; i < 64; ++i) noise += static_cast<char>((i * 73 + 41) % 251);
  cache.set("noise", noise);
  EXPECT_EQ(stored_form(*backend, "noise"), noise);
  EXPECT_EQ(cache.get("noise")->view(), noise);
}

TEST(Compression, AValueThatLooksLikeAFrameComesBackByteForByte) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.compress_min_bytes = 1024});
  std::string tricky = kZstdMagic + "not really zstd";
  ASSERT_TRUE(cache.set("tricky", tricky));
  EXPECT_EQ(cache.get("tricky")->view(), tricky);
}

TEST(Compression, BatchCallsCompressAndDecompressEachValue) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.compress_min_bytes = 16});
  std::string big(4096, 'x');
  std::vector<std::pair<std::string, std::string>> items{{"a", big}, {"b", "short"}};
  EXPECT_TRUE(cache.set_many(items).empty());
  EXPECT_EQ(stored_form(*backend, "a").substr(0, 4), kZstdMagic);
  auto got = cache.get_many({"a", "b", "missing"});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got.at("a").view(), big);
  EXPECT_EQ(got.at("b").view(), "short");
}

TEST(Compression, ACorruptFrameIsAMissCountedAsAnErrorAndAStrictDataLoss) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.max_error_logs_per_second = 0, .compress_min_bytes = 16});
  ASSERT_TRUE(cache.set("page", std::string(4096, 'x')));
  std::string stored = stored_form(*backend, "page");
  stored.resize(stored.size() - 3);  // truncated by another writer
  ASSERT_OK(backend->set(":1:page", stored, Expiry::never()));
  EXPECT_FALSE(cache.get("page").has_value());
  EXPECT_EQ(cache.stats().errors, 1u);
  EXPECT_STATUS(cache.strict().get("page"), StatusCode::kDataLoss);
  EXPECT_TRUE(cache.get_many({"page"}).empty());
  EXPECT_EQ(cache.stats().errors, 2u);
}

TEST(Compression, OffByDefaultSoStoredBytesAreTheCallersOwn) {
  auto backend = make_locmem_backend();
  Cache cache(backend);
  std::string big(4096, 'x');
  cache.set("page", big);
  EXPECT_EQ(stored_form(*backend, "page"), big);
}

}  // namespace
}  // namespace cachekit
