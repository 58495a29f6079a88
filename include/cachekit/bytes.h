#pragma once
// Bytes: an immutable, reference-counted byte string — the value type at the core of cachekit.
//
// A Bytes is cheap to copy (a counter increment) and never copies its payload, so the
// in-memory backend can hand out a stored value without duplicating it, and the page cache
// can send a cached body straight from the store. It is safe to read and copy from many
// threads at once; the bytes it views never change.

#include <atomic>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace cachekit {

namespace detail {
// The first member of every shared block of memory that a Bytes can point into. The block is
// released with ::operator delete when its last reference goes, so whatever follows the
// header must be trivially destructible.
struct SharedBlock {
  std::atomic<std::uint32_t> refs{1};
};
inline void retain(SharedBlock* b) noexcept {
  if (b != nullptr) b->refs.fetch_add(1, std::memory_order_relaxed);
}
inline void release(SharedBlock* b) noexcept {
  if (b != nullptr && b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    b->~SharedBlock();
    ::operator delete(b);
  }
}
}  // namespace detail

class Bytes {
 public:
  Bytes() noexcept = default;
  // Copies `s` into one new block.
  Bytes(std::string_view s);  // NOLINT(google-explicit-constructor): a value type
  Bytes(const std::string& s) : Bytes(std::string_view(s)) {}  // NOLINT
  Bytes(const char* s) : Bytes(std::string_view(s)) {}         // NOLINT

  // Views [data, data+size) inside `block`, taking one more reference to it.
  static Bytes share(detail::SharedBlock* block, const char* data, std::size_t size) noexcept {
    detail::retain(block);
    return Bytes(block, data, size);
  }
  // Views [data, data+size) inside `block`, adopting the caller's reference.
  static Bytes adopt(detail::SharedBlock* block, const char* data, std::size_t size) noexcept {
    return Bytes(block, data, size);
  }

  Bytes(const Bytes& o) noexcept : block_(o.block_), data_(o.data_), size_(o.size_) {
    detail::retain(block_);
  }
  Bytes(Bytes&& o) noexcept
      : block_(std::exchange(o.block_, nullptr)),
        data_(std::exchange(o.data_, "")),
        size_(std::exchange(o.size_, 0)) {}
  Bytes& operator=(Bytes o) noexcept {
    swap(o);
    return *this;
  }
  ~Bytes() { detail::release(block_); }

  void swap(Bytes& o) noexcept {
    std::swap(block_, o.block_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  [[nodiscard]] const char* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
  operator std::string_view() const noexcept { return view(); }  // NOLINT
  [[nodiscard]] std::string str() const { return std::string(view()); }
  // The bytes [pos, pos + n) (clamped to size()) as a Bytes that shares this one's block:
  // no copy, one more reference (the page cache views a stored body this way).
  [[nodiscard]] Bytes substr(std::size_t pos,
                             std::size_t n = std::string_view::npos) const noexcept {
    if (pos > size_) pos = size_;
    if (n > size_ - pos) n = size_ - pos;
    return share(block_, data_ + pos, n);
  }

  friend bool operator==(const Bytes& a, const Bytes& b) noexcept { return a.view() == b.view(); }
  friend bool operator==(const Bytes& a, std::string_view b) noexcept { return a.view() == b; }
  friend bool operator==(const Bytes& a, const char* b) noexcept { return a.view() == b; }
  friend std::ostream& operator<<(std::ostream& os, const Bytes& b) { return os << b.view(); }

 private:
  Bytes(detail::SharedBlock* block, const char* data, std::size_t size) noexcept
      : block_(block), data_(data), size_(size) {}

  detail::SharedBlock* block_ = nullptr;
  const char* data_ = "";
  std::size_t size_ = 0;
};

}  // namespace cachekit
