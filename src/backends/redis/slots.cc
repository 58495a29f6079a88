// CRC16/XMODEM by a 256-entry table built at compile time: one lookup and one shift per byte,
// which is what the Redis server itself does (src/crc16.c).
#include "backends/redis/slots.h"

#include <array>
#include <string>

namespace cachekit::redis_internal {
namespace {

constexpr std::array<std::uint16_t, 256> make_table() {
  std::array<std::uint16_t, 256> table{};
  for (unsigned byte = 0; byte < 256; ++byte) {
    auto crc = static_cast<std::uint16_t>(byte << 8);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint16_t>((crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<std::uint16_t, 256> kTable = make_table();

std::uint16_t crc16_continue(std::uint16_t crc, std::string_view bytes) noexcept {
  for (char c : bytes) {
    auto index = static_cast<std::uint8_t>((crc >> 8) ^ static_cast<std::uint8_t>(c));
    crc = static_cast<std::uint16_t>((crc << 8) ^ kTable[index]);
  }
  return crc;
}

}  // namespace

std::uint16_t crc16(std::string_view bytes) noexcept { return crc16_continue(0, bytes); }

// "{}" (nothing between the braces) is no tag: the whole key is hashed, as the server does.
std::string_view hashed_part(std::string_view key) noexcept {
  auto open = key.find('{');
  if (open == std::string_view::npos) return key;
  auto close = key.find('}', open + 1);
  if (close == std::string_view::npos || close == open + 1) return key;
  return key.substr(open + 1, close - open - 1);
}

std::uint16_t key_slot(std::string_view key) noexcept {
  return static_cast<std::uint16_t>(crc16(hashed_part(key)) % kClusterSlots);
}

// Without a '{' anywhere there is no tag and the CRC simply runs on over both parts: the
// common case allocates nothing.
std::uint16_t key_slot(std::string_view head, std::string_view tail) {
  if (head.find('{') == std::string_view::npos && tail.find('{') == std::string_view::npos) {
    return static_cast<std::uint16_t>(crc16_continue(crc16(head), tail) % kClusterSlots);
  }
  std::string key;
  key.reserve(head.size() + tail.size());
  key.append(head).append(tail);
  return key_slot(key);
}

}  // namespace cachekit::redis_internal
