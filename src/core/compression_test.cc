// Decompression bombs: a stored zstd frame may come from another writer and claim (or expand
// to) any size. Reads must check the declared size before allocating, bound frames that do not
// declare one, and treat anything over the cap as a miss counted as an error.

#include "core/compression.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <memory>
#include <string>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "support/status_matchers.h"

namespace cachekit {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// A frame holding `size` zero bytes, with or without its content size in the header.
std::string zero_frame(std::size_t size, bool declare_size) {
  std::string zeros(size, '\0');
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx(ZSTD_createCCtx(), ZSTD_freeCCtx);
  ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_contentSizeFlag, declare_size ? 1 : 0);
  std::string out(ZSTD_compressBound(size), '\0');
  std::size_t n = ZSTD_compress2(cctx.get(), out.data(), out.size(), zeros.data(), zeros.size());
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// A reader of compressed values with the given cap over a store holding `frame` under "k".
struct Reader {
  explicit Reader(const std::string& frame, std::size_t cap = CacheOptions{}.decompress_max_bytes)
      : backend(make_locmem_backend()),
        cache(backend, {.max_error_logs_per_second = 0,
                        .compress_min_bytes = 16,
                        .decompress_max_bytes = cap}) {
    EXPECT_OK(backend->set(":1:k", frame, Expiry::never()));
  }
  std::shared_ptr<Backend> backend;
  Cache cache;
};

TEST(DecompressionBomb, AFrameDeclaringMoreThanTheDefaultCapIsAMissCountedAsAnError) {
  Reader r(zero_frame(64 * kMiB + 1, true));  // a few kilobytes that expand past 64 MiB
  EXPECT_FALSE(r.cache.get("k").has_value());
  EXPECT_EQ(r.cache.stats().errors, 1u);
  EXPECT_STATUS(r.cache.strict().get("k"), StatusCode::kResourceExhausted);
  EXPECT_TRUE(r.cache.get_many({"k"}).empty());
}

TEST(DecompressionBomb, TheDeclaredSizeIsCheckedBeforeAllocating) {
  // A header claiming a terabyte, and no content: refused at once, not an allocation attempt.
  // Frame header: magic, descriptor (8-byte content size, single segment), size, then nothing.
  std::string forged("\x28\xB5\x2F\xFD\xE0", 5);
  for (int i = 0; i < 8; ++i) forged += static_cast<char>(i == 5 ? 1 : 0);  // 2^40 bytes
  auto status = detail::decompress_stored(forged, 64 * kMiB).status();
  EXPECT_STATUS(status, StatusCode::kResourceExhausted);
}

TEST(DecompressionBomb, TheCapIsAnOption) {
  Reader small(zero_frame(2 * kMiB, true), kMiB);
  EXPECT_STATUS(small.cache.strict().get("k"), StatusCode::kResourceExhausted);
  Reader large(zero_frame(2 * kMiB, true), 4 * kMiB);
  auto v = large.cache.get("k");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->size(), 2 * kMiB);
}

TEST(DecompressionBomb, FramesWithoutADeclaredSizeAreDecompressedWithinTheCap) {
  Reader fits(zero_frame(3 * kMiB, false), 4 * kMiB);
  auto v = fits.cache.get("k");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->view(), std::string(3 * kMiB, '\0'));
  Reader bomb(zero_frame(5 * kMiB, false), 4 * kMiB);
  EXPECT_FALSE(bomb.cache.get("k").has_value());
  EXPECT_EQ(bomb.cache.stats().errors, 1u);
  EXPECT_STATUS(bomb.cache.strict().get("k"), StatusCode::kResourceExhausted);
  std::string truncated = zero_frame(3 * kMiB, false);
  truncated.resize(truncated.size() - 2);
  Reader cut(truncated, 4 * kMiB);
  EXPECT_STATUS(cut.cache.strict().get("k"), StatusCode::kDataLoss);
}

TEST(DecompressionBomb, AValueOverTheCapIsRefusedWhenWritten) {
  auto backend = make_locmem_backend();
  Cache cache(backend, {.compress_min_bytes = 16, .decompress_max_bytes = 1024});
  std::string big(4096, 'x');
  EXPECT_STATUS(cache.strict().set("k", big), StatusCode::kResourceExhausted);
  EXPECT_TRUE(cache.set("k", std::string(1024, 'x')));
  EXPECT_EQ(cache.get("k")->size(), 1024u);
}

}  // namespace
}  // namespace cachekit
