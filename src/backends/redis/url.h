#pragma once
// Redis location URLs → where and how to connect. Internal to the Redis backend.

#include <string>
#include <string_view>

#include "cachekit/status.h"

namespace cachekit::redis_internal {

struct Endpoint {
  std::string host;         // TCP host (empty for a Unix socket)
  int port = 6379;          // TCP port
  std::string socket_path;  // a Unix socket (empty for TCP)
  int db = 0;
  std::string user;  // ACL user (Redis 6+); empty: the default user
  std::string password;

  [[nodiscard]] bool is_unix() const noexcept { return !socket_path.empty(); }
  // "127.0.0.1:6379/2" or "unix:/run/redis.sock?db=2": for messages, never with the password.
  [[nodiscard]] std::string describe() const;
};

// Parses redis://[[user]:password@]host[:port][/db][?db=N] and
// unix://[[user]:password@]/path[?db=N]; user and password are percent-decoded.
// kInvalidArgument: `invalid Redis URL "<url, password masked>": <problem>`.
Result<Endpoint> parse_url(std::string_view url);

}  // namespace cachekit::redis_internal
