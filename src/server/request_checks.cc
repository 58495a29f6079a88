#include "server/request_checks.h"

#include <sys/resource.h>

#include <algorithm>
#include <cctype>

#include "cachekit/http/message.h"
#include "core/text.h"

namespace cachekit::server::detail {
namespace {

bool is_tchar(char c) noexcept {
  const auto u = static_cast<unsigned char>(c);
  if (std::isalnum(u) != 0) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_digits(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

// Only a lone "chunked" is accepted. A list that merely ends in chunked ("gzip, chunked")
// would need the server to decode gzip, which it does not (501); and two parsers that disagree
// on any other spelling is exactly what request smuggling exploits, so everything else that is
// not a clean token list is a 400.
int transfer_encoding_verdict(std::string_view value) noexcept {
  bool unknown = false;
  bool chunked_seen = false;
  bool chunked_last = false;
  for (;;) {
    const auto comma = value.find(',');
    const std::string_view token = text::trim(value.substr(0, comma));
    if (token.empty() || !std::all_of(token.begin(), token.end(), is_tchar)) return 400;
    chunked_last = http::iequals(token, "chunked");
    if (chunked_last && chunked_seen) return 400;
    if (!chunked_last && chunked_seen) return 400;  // chunked must be final (RFC 9112 §6.1)
    chunked_seen = chunked_seen || chunked_last;
    unknown = unknown || !chunked_last;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  if (unknown) return 501;
  return chunked_last ? 0 : 400;
}

bool plain_content_length(std::string_view value) noexcept {
  return value.size() <= 18 && is_digits(value);
}

bool split_host(std::string_view host, std::string& name, std::string& port) {
  name.clear();
  port.clear();
  if (host.empty()) return false;
  std::string_view n = host;
  if (host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string_view::npos) return false;
    n = host.substr(0, close + 1);
    std::string_view rest = host.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':' || !is_digits(rest.substr(1))) return false;
      port.assign(rest.substr(1));
    }
    for (char c : n.substr(1, n.size() - 2)) {
      if (std::isxdigit(static_cast<unsigned char>(c)) == 0 && c != ':' && c != '.') return false;
    }
  } else {
    const auto colon = host.rfind(':');
    if (colon != std::string_view::npos) {
      if (!is_digits(host.substr(colon + 1))) return false;
      port.assign(host.substr(colon + 1));
      n = host.substr(0, colon);
    }
    if (n.empty()) return false;
    for (char c : n) {
      const auto u = static_cast<unsigned char>(c);
      if (std::isalnum(u) == 0 && c != '-' && c != '.' && c != '_') return false;
    }
  }
  name = text::to_lower(n);
  if (name.size() > 1 && name.back() == '.') name.pop_back();
  return true;
}

bool host_allowed(std::string_view host, const std::vector<std::string>& allowed) {
  static const std::vector<std::string> kDevelopment = {".localhost", "127.0.0.1", "[::1]"};
  std::string name;
  std::string port;
  if (!split_host(host, name, port)) return false;
  for (const std::string& pattern : allowed.empty() ? kDevelopment : allowed) {
    if (pattern == "*") return true;
    if (pattern.starts_with('.')) {
      const std::string_view domain = std::string_view(pattern).substr(1);
      if (http::iequals(name, domain)) return true;
      if (name.size() > pattern.size() &&
          http::iequals(std::string_view(name).substr(name.size() - pattern.size()), pattern)) {
        return true;
      }
    } else if (http::iequals(name, pattern)) {
      return true;
    }
  }
  return false;
}

bool client_allowed(std::string_view address, bool is_loopback,
                    const std::vector<std::string>& allowed) {
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& entry) {
    return entry == "*" || (entry == "loopback" && is_loopback) || entry == address;
  });
}

std::size_t default_max_connections() noexcept {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 1024;
  const rlim_t soft = std::min<rlim_t>(limit.rlim_cur, rlim_t{1} << 20);  // RLIM_INFINITY too
  const rlim_t headroom = std::max<rlim_t>(soft / 4, 64);
  return soft > headroom + 16 ? static_cast<std::size_t>(soft - headroom) : 16;
}

bool same_origin_path(std::string_view location) noexcept {
  if (!location.starts_with('/') || location.starts_with("//")) return false;
  return std::none_of(location.begin(), location.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return c == '\\' || u <= 0x20 || u == 0x7f;
  });
}

}  // namespace cachekit::server::detail
