#pragma once
// Pieces of the memcached backend shared between its files and its tests: server addresses,
// the expiry arithmetic, and the per-server health record that lets a hung server be skipped.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cachekit/clock.h"
#include "cachekit/status.h"
#include "cachekit/timeout.h"

namespace cachekit::memcached {

inline constexpr std::uint16_t kDefaultPort = 11211;
// Memcached reads an expiry above 30 days as an absolute unix time.
inline constexpr std::int64_t kMaxRelativeSeconds = 60 * 60 * 24 * 30;

struct ServerAddress {
  std::string host;  // a host name or address, or the socket path
  std::uint16_t port = kDefaultPort;
  bool unix_socket = false;

  // "host:port", "[v6]:port" or "unix:/path": the canonical spelling used in messages and stats.
  [[nodiscard]] std::string display() const;
};

// One location: "host", "host:port", "[v6]", "[v6]:port", "unix:/path" or "/path".
Result<ServerAddress> parse_server(std::string_view text);

// The exptime memcached should store for `expiry`, judged by `now` (the injected clock):
// 0 for never, relative seconds up to 30 days, otherwise an absolute unix time taken from
// `system_now` (the real clock, which is what the server compares with). nullopt when the
// expiry has already passed.
//
// Memcached's clock ticks once a second and an item dies when the tick reaches its exptime,
// so an exptime of n seconds lives between n-1 and n seconds. Rounding up and adding one
// second makes an entry live at least as long as asked, at most two seconds longer.
std::optional<std::int64_t> exptime_for(Expiry expiry, TimePoint now, TimePoint system_now);

// The exptime that keeps an item's remaining lifetime `seconds` (as the meta protocol's `t`
// flag reports it; -1 is never) when it is written back.
std::int64_t exptime_for_remaining(std::int64_t seconds, TimePoint system_now);

// A remaining lifetime reported by the meta protocol as Ttl. `t` seconds on the server's clock
// mean between t-1 and t seconds of real time; the lower bound is reported (at least 1 ms, as
// the key is live), so exptime_for() of it gives the same exptime back.
Ttl ttl_from_meta(std::int64_t t);

// Skips a server that keeps timing out. libmemcached ejects servers that refuse connections,
// but a server that accepts and never answers (hung, SIGSTOPped, a black-holed route) makes
// every call on its keys wait the full timeout, for ever. After `failure_limit` timeouts in a
// row the server is skipped — calls on its keys fail at once — for `retry`; then one call is
// let through as a probe, and its success puts the server back. Keys are not moved to another
// server: a hung server still holds its data, and reading a moved key from it after it comes
// back would serve a stale value. Lock-free; shared by every handle of a backend.
class ServerHealth {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  ServerHealth(std::size_t servers, unsigned failure_limit, std::chrono::milliseconds retry);

  // True when calls may go to `server`. While the server is skipped this is false, except
  // once per retry period, for the probe.
  [[nodiscard]] bool admit(std::size_t server, SteadyTime now) noexcept;
  void record_success(std::size_t server) noexcept;
  void record_timeout(std::size_t server, SteadyTime now) noexcept;
  // No server has a recorded failure: callers can skip the per-call bookkeeping.
  [[nodiscard]] bool all_healthy() const noexcept {
    return suspects_.load(std::memory_order_relaxed) == 0;
  }

 private:
  struct Server {
    std::atomic<std::uint32_t> failures{0};
    std::atomic<std::int64_t> skip_until{0};  // steady-clock ns; 0: not skipped
  };
  std::unique_ptr<Server[]> servers_;
  std::size_t count_;
  unsigned failure_limit_;
  std::chrono::nanoseconds retry_;
  std::atomic<std::uint32_t> suspects_{0};
};

}  // namespace cachekit::memcached
