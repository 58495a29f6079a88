// Memcached server addresses: parsing and canonical spelling.
#include "backends/memcached/server_address.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "cachekit/backends/memcached.h"
#include "core/text.h"

namespace cachekit::memcached_internal {

namespace {

std::string_view trim(std::string_view s) { return text::trim(s, " \t\r\n"); }

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

}  // namespace cachekit::memcached_internal

namespace cachekit {

Result<std::vector<std::string>> parse_memcached_locations(std::string_view text) {
  std::string_view rest = memcached_internal::trim(text);
  constexpr std::string_view kScheme = "memcached://";
  if (rest.size() >= kScheme.size()) {
    if (text::iequals(rest.substr(0, kScheme.size()), kScheme)) rest.remove_prefix(kScheme.size());
  }
  std::vector<std::string> out;
  while (!rest.empty()) {
    auto end = rest.find_first_of(";,");
    auto part = memcached_internal::trim(rest.substr(0, end));
    if (!part.empty()) {
      auto address = memcached_internal::parse_server(part);
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
