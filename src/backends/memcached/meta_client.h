#pragma once
// MetaClient: the two memcached meta-protocol commands libmemcached 1.1.4 cannot send.
//
// The classic protocols (text and binary) never report an item's remaining lifetime, and their
// incr/decr are unsigned (decr clamps at 0, a negative value is "non-numeric"). Memcached ≥ 1.6
// has the meta protocol: `mg <key> v c t` returns the value, its CAS and its remaining TTL in one
// atomic step, and `ms <key> <len> C<cas> T<ttl>` writes back only if nothing changed meanwhile.
// Those two commands give ttl() and a signed, overflow-checked incr that keeps the expiry.
//
// Connections are plain blocking-free sockets (non-blocking + poll), one request at a time, kept
// per server in a small idle list. Every wait is bounded by the configured timeouts; a connection
// that saw any error or protocol surprise is closed rather than reused, so a late answer can never
// be read as the answer to a later request. Thread-safe.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backends/memcached/server_address.h"
#include "cachekit/status.h"

namespace cachekit::memcached_internal {

class MetaClient {
 public:
  MetaClient(std::vector<ServerAddress> servers, std::chrono::milliseconds connect_timeout,
             std::chrono::milliseconds timeout, std::size_t max_idle_per_server);
  ~MetaClient();
  MetaClient(const MetaClient&) = delete;
  MetaClient& operator=(const MetaClient&) = delete;

  struct Item {
    std::string value;      // empty unless asked for
    std::uint64_t cas = 0;  // 0 unless asked for
    std::int64_t ttl = -1;  // remaining seconds on the server's clock; -1: never expires
  };
  // `mg`: nullopt when the key is missing. kDeadlineExceeded on a timeout, kUnavailable when the
  // server cannot be reached, kInvalidArgument for a key the protocol cannot carry.
  Result<std::optional<Item>> get(std::size_t server, std::string_view key, bool with_value);

  enum class StoreOutcome { kStored, kChanged, kMissing };
  // `ms` with a CAS guard: kChanged if the item changed since `cas` was read, kMissing if it was
  // removed. `exptime` is memcached's (0 never, relative seconds, or absolute unix time).
  Result<StoreOutcome> store_if_unchanged(std::size_t server, std::string_view key,
                                          std::string_view value, std::uint64_t cas,
                                          std::int64_t exptime);

  // `ma k v D<amount>`: memcached's own incr, 64-bit and wrapping at 2^64 (libmemcached's
  // memcached_increment carries only 32 bits). The new value, nullopt when the key is missing,
  // kFailedPrecondition when the stored value is not an unsigned decimal. Keeps the expiry.
  Result<std::optional<std::uint64_t>> add(std::size_t server, std::string_view key,
                                           std::uint64_t amount);

  // The server's `stats` as (name, value) pairs, in the server's order.
  Result<std::vector<std::pair<std::string, std::string>>> stats(std::size_t server);

  [[nodiscard]] std::size_t server_count() const noexcept { return servers_.size(); }

 private:
  class Connection;
  struct Idle;
  // An idle connection (reused = true) or a new one.
  Result<std::unique_ptr<Connection>> checkout(std::size_t server, bool& reused);
  void checkin(std::size_t server, std::unique_ptr<Connection> connection);
  // Sends `request` and reads one reply; the connection goes back to the idle list only when
  // the exchange completed cleanly.
  Result<std::string> exchange(std::size_t server, const std::string& request,
                               std::string_view key);

  std::vector<ServerAddress> servers_;
  std::chrono::milliseconds connect_timeout_;
  std::chrono::milliseconds timeout_;
  std::size_t max_idle_;
  std::unique_ptr<Idle[]> idle_;
};

// The key as the meta protocol spells it: as is when it has no space or control byte, else
// base64 with the `b` flag. kInvalidArgument when neither fits the 250-byte limit.
Result<std::string> meta_key(std::string_view key);

}  // namespace cachekit::memcached_internal
