#pragma once
// ServerHealth: the per-server failure record that lets the memcached backend skip a hung server.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace cachekit::memcached_internal {

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

}  // namespace cachekit::memcached_internal
