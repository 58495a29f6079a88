// Server addresses, expiry arithmetic and server health for the memcached backend.
#include "backends/memcached/internal.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "cachekit/backends/memcached.h"

namespace cachekit::memcached {

namespace {

std::string_view trim(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  auto first = s.find_first_not_of(kSpace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kSpace) - first + 1);
}

Status bad_location(std::string_view text, std::string_view why) {
  return invalid_argument_error("bad memcached server \"" + std::string(text) +
                                "\": " + std::string(why));
}

Result<std::uint16_t> parse_port(std::string_view whole, std::string_view digits) {
  unsigned port = 0;
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || port == 0 ||
      port > 65535) {
    return bad_location(whole, "the port must be a number from 1 to 65535");
  }
  return static_cast<std::uint16_t>(port);
}

bool has_space(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7f; });
}

Result<ServerAddress> parse_unix(std::string_view whole, std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return bad_location(whole, "a unix socket needs an absolute path, e.g. unix:/run/mc.sock");
  }
  return ServerAddress{std::string(path), 0, true};
}

// "[v6]" or "[v6]:port".
Result<ServerAddress> parse_bracketed(std::string_view whole, std::string_view text) {
  auto close = text.find(']');
  if (close == std::string_view::npos || close == 1) {
    return bad_location(whole, "an IPv6 address is written [address]:port");
  }
  ServerAddress address{std::string(text.substr(1, close - 1)), kDefaultPort, false};
  auto rest = text.substr(close + 1);
  if (rest.empty()) return address;
  if (rest.front() != ':') return bad_location(whole, "expected ':' after the ']'");
  auto port = parse_port(whole, rest.substr(1));
  if (!port.ok()) return port.status();
  address.port = *port;
  return address;
}

}  // namespace

std::string ServerAddress::display() const {
  if (unix_socket) return "unix:" + host;
  std::string port_text = std::to_string(port);
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port_text;
  return host + ":" + port_text;
}

Result<ServerAddress> parse_server(std::string_view raw) {
  std::string_view text = trim(raw);
  if (text.empty()) return bad_location(raw, "empty");
  if (has_space(text)) return bad_location(text, "contains a space or control character");
  if (text.starts_with("unix:")) return parse_unix(text, text.substr(5));
  if (text.front() == '/') return parse_unix(text, text);
  if (text.front() == '[') return parse_bracketed(text, text);
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return ServerAddress{std::string(text), kDefaultPort, false};
  if (text.find(':') != colon) {
    return bad_location(text, "an IPv6 address must be in brackets, e.g. [::1]:11211");
  }
  if (colon == 0) return bad_location(text, "the host is empty");
  auto port = parse_port(text, text.substr(colon + 1));
  if (!port.ok()) return port.status();
  return ServerAddress{std::string(text.substr(0, colon)), *port, false};
}

// ---- expiry ----

namespace {

std::int64_t ceil_seconds(std::chrono::milliseconds ms) { return (ms.count() + 999) / 1000; }

// Memcached keeps exptimes in 32 bits (the binary protocol's field, the server's rel_time_t):
// an absolute time past 2106 would wrap into the past, so such a far expiry becomes "never".
std::int64_t absolute_or_never(std::int64_t unix_seconds) {
  return unix_seconds > std::int64_t{0xFFFFFFFF} ? 0 : unix_seconds;
}

}  // namespace

std::optional<std::int64_t> exptime_for(Expiry expiry, TimePoint now, TimePoint system_now) {
  if (expiry.is_never()) return 0;
  auto remaining = expiry.time() - now;
  if (remaining <= std::chrono::milliseconds(0)) return std::nullopt;
  std::int64_t seconds = ceil_seconds(remaining) + 1;
  if (seconds <= kMaxRelativeSeconds) return seconds;
  return absolute_or_never(ceil_seconds(system_now.time_since_epoch() + remaining) + 1);
}

std::int64_t exptime_for_remaining(std::int64_t seconds, TimePoint system_now) {
  if (seconds < 0) return 0;
  if (seconds <= kMaxRelativeSeconds) return seconds;
  return absolute_or_never(ceil_seconds(system_now.time_since_epoch()) + seconds);
}

Ttl ttl_from_meta(std::int64_t t) {
  if (t < 0) return Ttl::never();
  return Ttl::after(std::max<std::chrono::milliseconds>(std::chrono::seconds(t - 1),
                                                        std::chrono::milliseconds(1)));
}

// ---- ServerHealth ----

ServerHealth::ServerHealth(std::size_t servers, unsigned failure_limit,
                           std::chrono::milliseconds retry)
    : servers_(std::make_unique<Server[]>(servers)),
      count_(servers),
      failure_limit_(std::max(1u, failure_limit)),
      retry_(retry) {}

bool ServerHealth::admit(std::size_t server, SteadyTime now) noexcept {
  if (server >= count_) return true;
  Server& s = servers_[server];
  std::int64_t until = s.skip_until.load(std::memory_order_acquire);
  std::int64_t now_ns = now.time_since_epoch().count();
  if (until == 0) return true;
  if (now_ns < until) return false;
  // The retry period is over: exactly one caller wins the right to probe, and pushes the next
  // probe a full period away in case this one never reports back.
  return s.skip_until.compare_exchange_strong(until, now_ns + retry_.count(),
                                              std::memory_order_acq_rel);
}

void ServerHealth::record_success(std::size_t server) noexcept {
  if (server >= count_) return;
  Server& s = servers_[server];
  if (s.failures.load(std::memory_order_relaxed) == 0) return;
  if (s.failures.exchange(0, std::memory_order_acq_rel) != 0) {
    s.skip_until.store(0, std::memory_order_release);
    suspects_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void ServerHealth::record_timeout(std::size_t server, SteadyTime now) noexcept {
  if (server >= count_) return;
  Server& s = servers_[server];
  std::uint32_t failures = s.failures.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (failures == 1) suspects_.fetch_add(1, std::memory_order_relaxed);
  if (failures >= failure_limit_) {
    s.skip_until.store(now.time_since_epoch().count() + retry_.count(), std::memory_order_release);
  }
}

}  // namespace cachekit::memcached

namespace cachekit {

Result<std::vector<std::string>> parse_memcached_locations(std::string_view text) {
  std::string_view rest = memcached::trim(text);
  constexpr std::string_view kScheme = "memcached://";
  if (rest.size() >= kScheme.size()) {
    std::string scheme(rest.substr(0, kScheme.size()));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == kScheme) rest.remove_prefix(kScheme.size());
  }
  std::vector<std::string> out;
  while (!rest.empty()) {
    auto end = rest.find_first_of(";,");
    auto part = memcached::trim(rest.substr(0, end));
    if (!part.empty()) {
      auto address = memcached::parse_server(part);
      if (!address.ok()) return address.status();
      out.push_back(address->display());
    }
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
  }
  if (out.empty()) {
    return invalid_argument_error("no memcached server given; expected e.g. \"127.0.0.1:11211\"");
  }
  return out;
}

}  // namespace cachekit
