#pragma once
// Header-value parsing helpers shared by the http layer's .cc files (not part of the public
// API).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/http/message.h"
#include "core/text.h"

namespace cachekit::http::detail {

// The ASCII helpers live in core/text.h (shared with the config, backends and server).
using text::ascii_lower;
using text::ascii_upper;
using text::trim;
inline std::string lower(std::string_view s) { return text::to_lower(s); }

// The members of a comma-separated header list (RFC 9110 §5.6.1), trimmed, empty members
// dropped. A comma inside a quoted string does not split (Cache-Control's no-cache="a, b").
std::vector<std::string_view> split_list(std::string_view value);

// Every field called `name` of `headers`, joined by ", " (how RFC 9110 combines repeats).
std::string joined(const Headers& headers, std::string_view name);

// `text` without surrounding double quotes, if it has them.
std::string_view unquote(std::string_view text) noexcept;

// A non-negative decimal integer (delta-seconds, RFC 9111 §1.2.2): digits only, saturating at
// INT64_MAX as the RFC asks for overflowing values. nullopt for anything else.
std::optional<std::int64_t> parse_delta_seconds(std::string_view text) noexcept;

// Python's int(text) for the forms Django meets: optional whitespace, sign, digits.
std::optional<std::int64_t> parse_int(std::string_view text) noexcept;

}  // namespace cachekit::http::detail
