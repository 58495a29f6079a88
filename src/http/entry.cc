#include "http/entry.h"

#include <cstring>
#include <string_view>

namespace cachekit::http::detail {

namespace {

constexpr std::string_view kMagic{"CKP\x02", 4};

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_bytes(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}

// Bounds-checked reading: every read says whether the input had enough bytes, so a truncated
// or hostile value can never read past its end.
class Reader {
 public:
  explicit Reader(std::string_view s) noexcept : s_(s) {}
  [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
  [[nodiscard]] std::size_t left() const noexcept { return s_.size() - pos_; }
  bool u32(std::uint32_t& v) noexcept { return unsigned_le(4, v); }
  bool u64(std::uint64_t& v) noexcept { return unsigned_le(8, v); }
  bool bytes(std::string_view& v) noexcept {
    std::uint32_t n = 0;
    if (!u32(n) || n > left()) return false;
    v = s_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::string_view expected) noexcept {
    if (s_.substr(pos_, expected.size()) != expected) return false;
    pos_ += expected.size();
    return true;
  }

 private:
  template <class T>
  bool unsigned_le(std::size_t n, T& v) noexcept {
    if (left() < n) return false;
    v = 0;
    for (std::size_t i = 0; i < n; ++i) {
      v |= static_cast<T>(static_cast<unsigned char>(s_[pos_ + i])) << (8 * i);
    }
    pos_ += n;
    return true;
  }
  std::string_view s_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string encode_entry(const EntryMeta& meta, const Response& response) {
  std::size_t size = kMagic.size() + 8 + 8 + 8 + 8 + 8 + 4 + meta.selecting.size() + 4 + 4 + 8 +
                     response.body.size();
  for (const auto& [n, v] : response.headers) size += 8 + n.size() + v.size();
  std::string out;
  out.reserve(size);  // one allocation; the body is copied once, at the end
  out += kMagic;
  put_u64(out, static_cast<std::uint64_t>(meta.born_ms));
  put_u64(out, static_cast<std::uint64_t>(meta.fresh_until_ms));
  put_u64(out, static_cast<std::uint64_t>(meta.stale_while_revalidate_ms));
  put_u64(out, static_cast<std::uint64_t>(meta.stale_if_error_ms));
  put_u64(out, meta.epoch);
  put_bytes(out, meta.selecting);
  put_u32(out, static_cast<std::uint32_t>(response.status));
  put_u32(out, static_cast<std::uint32_t>(response.headers.size()));
  for (const auto& [n, v] : response.headers) {
    put_bytes(out, n);
    put_bytes(out, v);
  }
  put_u64(out, response.body.size());
  out += response.body.view();
  return out;
}

std::optional<Entry> decode_entry(const Bytes& value) {
  Reader r(value.view());
  Entry e;
  std::uint64_t born = 0, until = 0, swr = 0, sie = 0, body_size = 0;
  std::uint32_t status = 0, count = 0;
  std::string_view selecting;
  if (!r.skip(kMagic) || !r.u64(born) || !r.u64(until) || !r.u64(swr) || !r.u64(sie) ||
      !r.u64(e.meta.epoch) || !r.bytes(selecting) || !r.u32(status) || !r.u32(count)) {
    return std::nullopt;
  }
  // Each field takes at least 8 bytes: a corrupt count cannot make us loop (or reserve) far.
  if (status < 100 || status > 999 || count > r.left() / 8) return std::nullopt;
  e.meta.born_ms = static_cast<std::int64_t>(born);
  e.meta.fresh_until_ms = static_cast<std::int64_t>(until);
  e.meta.stale_while_revalidate_ms = static_cast<std::int64_t>(swr);
  e.meta.stale_if_error_ms = static_cast<std::int64_t>(sie);
  e.meta.selecting = std::string(selecting);
  e.response.status = static_cast<int>(status);
  for (std::uint32_t i = 0; i < count; ++i) {
    std::string_view name, field;
    if (!r.bytes(name) || !r.bytes(field)) return std::nullopt;
    e.response.headers.add(name, std::string(field));
  }
  if (!r.u64(body_size) || body_size != r.left()) return std::nullopt;
  e.response.body = value.substr(r.pos(), body_size);  // shares the stored bytes
  return e;
}

}  // namespace cachekit::http::detail
