#pragma once
// Redis location URLs → where and how to connect. Internal to the Redis backend.

#include <string>
#include <string_view>
#include <vector>

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

// A primary found through Redis Sentinel: the sentinels to ask, the name they monitor it
// under, and how to talk to the primary (and replicas) once found.
struct SentinelLocation {
  struct Address {
    std::string host;
    int port = 26379;
  };
  std::vector<Address> sentinels;  // asked in this order
  std::string master_name;
  int db = 0;        // selected on the primary and the replicas (sentinels have no databases)
  std::string user;  // authenticates to the primary and the replicas, not to the sentinels
  std::string password;
  bool read_from_replicas = false;  // ?replicas=true: reads go to the replicas sentinels list

  // An Endpoint for a server the sentinels named, with this location's db and credentials.
  [[nodiscard]] Endpoint endpoint(std::string host, int port) const;
  // "sentinel://127.0.0.1:26379,127.0.0.1:26380/mymaster/2": never with the credentials.
  [[nodiscard]] std::string describe() const;
};

// True for a sentinel:// URL (any case).
bool is_sentinel_url(std::string_view url);
// Parses sentinel://[[user]:password@]host[:port][,host[:port]...]/<master-name>[/db]
// [?replicas=true|false] (port 26379 by default). The same message format as parse_url.
Result<SentinelLocation> parse_sentinel_url(std::string_view url);

}  // namespace cachekit::redis_internal
