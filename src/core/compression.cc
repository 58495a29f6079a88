#include "core/compression.h"

#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <memory>
#include <new>

#include "cachekit/backend.h"

namespace cachekit::detail {

namespace {
constexpr char kMagic[4] = {'\x28', '\xB5', '\x2F', '\xFD'};
}  // namespace

bool is_zstd_frame(std::string_view stored) noexcept {
  return stored.size() >= sizeof kMagic && std::memcmp(stored.data(), kMagic, sizeof kMagic) == 0;
}

Result<std::optional<std::string>> compress_for_store(std::string_view value, std::size_t min_bytes,
                                                      int level) {
  if (min_bytes == 0) return std::optional<std::string>();
  const bool looks_framed = is_zstd_frame(value);
  if (!looks_framed && (value.size() < min_bytes || parse_decimal(value).has_value())) {
    return std::optional<std::string>();
  }
  std::string out(ZSTD_compressBound(value.size()), '\0');
  // ZSTD_compress records the content size in the frame header, which decompress_stored needs.
  std::size_t n = ZSTD_compress(out.data(), out.size(), value.data(), value.size(), level);
  if (ZSTD_isError(n)) {
    return Status(StatusCode::kInternal,
                  std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
  }
  if (!looks_framed && n >= value.size()) return std::optional<std::string>();  // incompressible
  out.resize(n);
  return std::optional<std::string>(std::move(out));
}

namespace {

Status over_cap(std::string_view what, std::size_t max_bytes) {
  return Status(StatusCode::kResourceExhausted, "the stored zstd frame " + std::string(what) +
                                                    ", over the " + std::to_string(max_bytes) +
                                                    "-byte limit (decompress_max_bytes)");
}

// A frame that does not declare its size (another client's streaming writer) is decompressed in
// chunks, and given up as soon as the output passes `max_bytes`: the cap bounds the memory a
// crafted frame can make a reader allocate, whatever it claims. The window is bounded too, so
// the decoder's own buffer cannot exceed the cap either.
Result<Bytes> decompress_unknown_size(std::string_view stored, std::size_t max_bytes) {
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return Status(StatusCode::kResourceExhausted, "out of memory for zstd");
  // 10 and 27 are zstd's smallest window log and its decoder's default limit (the names are in
  // zstd's experimental API only).
  const int window_log = std::clamp(static_cast<int>(std::bit_width(max_bytes)), 10, 27);
  ZSTD_DCtx_setParameter(dctx.get(), ZSTD_d_windowLogMax, window_log);
  std::string out;
  ZSTD_inBuffer in{stored.data(), stored.size(), 0};
  for (;;) {
    const std::size_t old = out.size();
    const std::size_t chunk = std::min(ZSTD_DStreamOutSize(), max_bytes + 1 - old);
    out.resize(old + chunk);
    ZSTD_outBuffer o{out.data() + old, chunk, 0};
    const std::size_t left = ZSTD_decompressStream(dctx.get(), &o, &in);
    out.resize(old + o.pos);
    if (ZSTD_isError(left)) {
      if (ZSTD_getErrorCode(left) == ZSTD_error_frameParameter_windowTooLarge) {
        return over_cap("needs a larger window", max_bytes);
      }
      return Status(StatusCode::kDataLoss,
                    std::string("the stored zstd frame is corrupt: ") + ZSTD_getErrorName(left));
    }
    if (out.size() > max_bytes) return over_cap("expands further", max_bytes);
    if (left == 0) break;  // the frame is complete
    if (in.pos == in.size && o.pos < chunk) {
      return Status(StatusCode::kDataLoss, "the stored zstd frame is truncated");
    }
  }
  if (in.pos != in.size) {
    return Status(StatusCode::kDataLoss, "the stored value has bytes after its zstd frame");
  }
  return Bytes(std::string_view(out));
}

}  // namespace

Result<Bytes> decompress_stored(std::string_view stored, std::size_t max_bytes) {
  // The header is read first: a frame declaring more than the cap is refused before anything
  // is allocated for it.
  unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) {
    return Status(StatusCode::kDataLoss, "the stored value is not a valid zstd frame");
  }
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return decompress_unknown_size(stored, max_bytes);
  if (size > max_bytes) return over_cap("claims " + std::to_string(size) + " bytes", max_bytes);
  if (size == 0) return Bytes();
  // One allocation, as Bytes(string_view) makes: the shared header, then the bytes.
  void* raw = ::operator new(sizeof(SharedBlock) + size);
  auto* block = new (raw) SharedBlock();
  char* data = static_cast<char*>(raw) + sizeof(SharedBlock);
  std::size_t got = ZSTD_decompress(data, size, stored.data(), stored.size());
  if (ZSTD_isError(got) || got != size) {
    release(block);
    return Status(StatusCode::kDataLoss,
                  std::string("the stored zstd frame is corrupt: ") +
                      (ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short content"));
  }
  return Bytes::adopt(block, data, size);
}

}  // namespace cachekit::detail
