#include "cachekit/bytes.h"

#include <new>

namespace cachekit {

Bytes::Bytes(std::string_view s) {
  if (s.empty()) return;  // the empty value needs no block
  // One allocation: the shared header, then the bytes.
  void* raw = ::operator new(sizeof(detail::SharedBlock) + s.size());
  auto* block = new (raw) detail::SharedBlock();
  char* data = static_cast<char*>(raw) + sizeof(detail::SharedBlock);
  std::memcpy(data, s.data(), s.size());
  block_ = block;
  data_ = data;
  size_ = s.size();
}

}  // namespace cachekit
