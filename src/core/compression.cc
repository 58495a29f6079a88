#include "core/compression.h"

#include <zstd.h>

#include <cstring>
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

Result<Bytes> decompress_stored(std::string_view stored, std::size_t max_bytes) {
  unsigned long long size = ZSTD_getFrameContentSize(stored.data(), stored.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return Status(StatusCode::kDataLoss, "the stored value is not a valid zstd frame");
  }
  if (size > max_bytes) {
    return Status(StatusCode::kDataLoss, "the stored zstd frame claims " + std::to_string(size) +
                                             " bytes, over the " + std::to_string(max_bytes) +
                                             "-byte limit");
  }
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
