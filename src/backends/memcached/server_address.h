#pragma once
// Memcached server addresses: parsing a location ("host:port", "[v6]:port", "unix:/path") into
// the canonical spelling used on the ring, in messages and in stats.

#include <cstdint>
#include <string>
#include <string_view>

#include "cachekit/status.h"

namespace cachekit::memcached_internal {

inline constexpr std::uint16_t kDefaultPort = 11211;

struct ServerAddress {
  std::string host;  // a host name or address, or the socket path
  std::uint16_t port = kDefaultPort;
  bool unix_socket = false;

  // "host:port", "[v6]:port" or "unix:/path": the canonical spelling used in messages and stats.
  [[nodiscard]] std::string display() const;
};

// One location: "host", "host:port", "[v6]", "[v6]:port", "unix:/path" or "/path".
Result<ServerAddress> parse_server(std::string_view text);

}  // namespace cachekit::memcached_internal
