#pragma once
// ASCII text helpers shared by every layer: percent-decoding under an explicit policy, trimming,
// case folding and hex. Locale-independent (only ASCII letters change case), allocation only
// where a std::string is returned. Pure functions: safe from any thread.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cachekit::text {

// What percent_decode() does with the characters where decoders of URLs disagree.
struct DecodePolicy {
  // What a '%' not followed by two hex digits ("%zz", "%4", a trailing "%") means.
  enum class Malformed : unsigned char {
    kReject,  // the whole input is refused (percent_decode returns nullopt)
    kKeep,    // the '%' and what follows are kept literally (Python's unquote)
  };
  Malformed malformed = Malformed::kReject;
  // '+' decodes to a space (application/x-www-form-urlencoded); otherwise '+' stays '+'.
  bool plus_is_space = false;
};

// The policies the project uses, named after where each applies.
// A configuration URL's userinfo or path: a broken escape is a typo the user must hear about.
inline constexpr DecodePolicy kStrictUrl{DecodePolicy::Malformed::kReject, false};
// A path segment handed to a view: lenient, as Django's router; '+' is only the query's rule.
inline constexpr DecodePolicy kLenientPath{DecodePolicy::Malformed::kKeep, false};
// A query string or form body (Python's unquote_plus).
inline constexpr DecodePolicy kForm{DecodePolicy::Malformed::kKeep, true};

// `encoded` with every valid %XX (either case of hex digit) replaced by its byte. nullopt only
// under Malformed::kReject when an escape is broken; a decoded byte may be anything, %00
// included (callers that cannot hold a NUL check for it).
[[nodiscard]] std::optional<std::string> percent_decode(std::string_view encoded,
                                                        DecodePolicy policy);

// The characters trim() removes by default: HTTP's optional whitespace (RFC 9110 §5.6.3).
inline constexpr std::string_view kHttpWhitespace = " \t";
// `s` without leading and trailing characters from `chars` (a view into `s`).
[[nodiscard]] std::string_view trim(std::string_view s,
                                    std::string_view chars = kHttpWhitespace) noexcept;

[[nodiscard]] constexpr char ascii_lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}
[[nodiscard]] constexpr char ascii_upper(char c) noexcept {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - ('a' - 'A')) : c;
}
// `s` with ASCII upper-case letters lowered; other bytes unchanged.
[[nodiscard]] std::string to_lower(std::string_view s);
// ASCII case-insensitive equality (HTTP field names, URL schemes). Inline: header lookups on
// the page-cache hit path call it for every field.
[[nodiscard]] constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// The value of one hex digit (0-9, a-f, A-F), or -1 for any other character.
[[nodiscard]] constexpr int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
// Two lower-case hex digits per byte of `bytes`.
[[nodiscard]] std::string hex_encode(std::string_view bytes);
// The bytes `hex` spells (either case), or nullopt for an odd length or a non-hex character.
[[nodiscard]] std::optional<std::string> hex_decode(std::string_view hex);

}  // namespace cachekit::text
