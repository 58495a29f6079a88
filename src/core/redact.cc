#include "cachekit/redact.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "core/text.h"

namespace cachekit {

namespace {

constexpr std::string_view kMask = "***";
constexpr std::array<std::string_view, 8> kSecretParameters = {
    "password", "pass", "passwd", "pwd", "secret", "token", "auth", "key"};

bool is_secret_parameter(std::string_view name) {
  const std::string lower = text::to_lower(name);
  return std::find(kSecretParameters.begin(), kSecretParameters.end(), lower) !=
         kSecretParameters.end();
}

// "scheme://[user[:password]@]rest": masks the password, or all the userinfo when its form is
// unclear. The userinfo runs to the last '@', wherever it is.
std::string mask_userinfo(std::string_view url) {
  const auto scheme_end = url.find("://");
  const std::size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  const auto at = url.rfind('@');
  if (at == std::string_view::npos || at < start) return std::string(url);
  const std::string_view userinfo = url.substr(start, at - start);
  const auto colon = userinfo.find(':');
  const bool clear_user = colon != std::string_view::npos &&
                          userinfo.substr(0, colon).find_first_of("/?#,") == std::string_view::npos;
  std::string out(url.substr(0, start));
  if (clear_user) out.append(userinfo.substr(0, colon + 1));
  out.append(kMask).append(url.substr(at));
  return out;
}

// Masks the value of every name=value pair whose name carries a secret; pairs start after
// '?', '&' or ';' (or at the start of text without a scheme) and end at '&', ';' or '#'.
std::string mask_parameters(std::string_view text) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    const auto eq = text.find('=', i);
    if (eq == std::string_view::npos) break;
    const auto name_start = text.find_last_of("?&;", eq);
    const std::size_t from = name_start == std::string_view::npos || name_start < i
                                 ? std::string_view::npos
                                 : name_start + 1;
    const auto value_end = std::min(text.find_first_of("&;#", eq + 1), text.size());
    out.append(text.substr(i, eq + 1 - i));
    if (from != std::string_view::npos && is_secret_parameter(text.substr(from, eq - from))) {
      out.append(kMask);
    } else {
      out.append(text.substr(eq + 1, value_end - eq - 1));
    }
    i = value_end;
  }
  if (i < text.size()) out.append(text.substr(i));
  return out;
}

}  // namespace

std::string redact(std::string_view url) { return mask_parameters(mask_userinfo(url)); }

}  // namespace cachekit
