#pragma once
// Redis Cluster's key → slot mapping. Internal to the Redis backend.
//
// A cluster splits the keyspace into 16384 hash slots; a key's slot is CRC16 (XMODEM:
// polynomial 0x1021, initial value 0, no reflection) of the key, mod 16384. When the key holds
// a hash tag — a '{' followed later by a '}' with at least one character between them — only
// the characters between the first '{' and the next '}' are hashed, so "{user1000}.following"
// and "{user1000}.followers" share a slot. Pure functions: thread-safe.

#include <cstdint>
#include <string_view>

namespace cachekit::redis_internal {

inline constexpr std::uint16_t kClusterSlots = 16384;

// CRC16/XMODEM of `bytes` (CRC16("123456789") == 0x31C3).
[[nodiscard]] std::uint16_t crc16(std::string_view bytes) noexcept;

// The part of `key` that is hashed: the hash tag when there is one, else the whole key.
[[nodiscard]] std::string_view hashed_part(std::string_view key) noexcept;

// The cluster slot of `key`, 0-16383 (what `CLUSTER KEYSLOT key` answers).
[[nodiscard]] std::uint16_t key_slot(std::string_view key) noexcept;

// The slot of the key `head` + `tail` (a key namespace and a key) without joining them.
[[nodiscard]] std::uint16_t key_slot(std::string_view head, std::string_view tail);

}  // namespace cachekit::redis_internal
