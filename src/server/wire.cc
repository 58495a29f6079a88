#include "server/wire.h"

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace cachekit::server::detail {
namespace {

// What write_head must know about a field name. Names are dispatched on their length first,
// so the common fields cost one integer compare instead of five case-insensitive ones.
enum class FieldKind { kOther, kContentLength, kFraming, kDate, kRequestId };

FieldKind classify_field(std::string_view name) noexcept {
  switch (name.size()) {
    case 4:
      return http::iequals(name, "Date") ? FieldKind::kDate : FieldKind::kOther;
    case 10:  // Connection, Keep-Alive: hop-by-hop, decided by the server
      return http::iequals(name, "Connection") || http::iequals(name, "Keep-Alive")
                 ? FieldKind::kFraming
                 : FieldKind::kOther;
    case 12:
      return http::iequals(name, "X-Request-Id") ? FieldKind::kRequestId : FieldKind::kOther;
    case 14:
      return http::iequals(name, "Content-Length") ? FieldKind::kContentLength : FieldKind::kOther;
    case 17:
      return http::iequals(name, "Transfer-Encoding") ? FieldKind::kFraming : FieldKind::kOther;
    default:
      return FieldKind::kOther;
  }
}

// CR, LF or NUL in a field would let a handler inject fields or a second response. A plain
// loop: string_view::find_first_of calls memchr once per byte of the haystack.
bool safe_text(std::string_view s) noexcept {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return false;
  }
  return true;
}

void append_number(std::string& out, std::uint64_t n) {
  std::array<char, 24> digits;
  auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
  out.append(digits.data(), end);
}

// A bijective 64-bit mix (splitmix64's finaliser): distinct counters give distinct ids, and
// consecutive ids don't look consecutive in logs.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

bool status_has_body(int status) noexcept {
  return status >= 200 && status != 204 && status != 304;
}

std::size_t body_bytes_to_write(const http::Response& response, const HeadParams& params) noexcept {
  if (params.head_request || !status_has_body(response.status)) return 0;
  return response.body.size();
}

void write_head(std::string& out, const http::Response& response, const HeadParams& params) {
  out.clear();
  out += "HTTP/1.1 ";
  append_number(out, static_cast<std::uint64_t>(response.status));
  out += ' ';
  std::string_view reason = http::reason_phrase(response.status);
  out += reason.empty() ? std::string_view("Unknown") : reason;
  out += "\r\n";
  bool has_date = false, has_id = false;
  std::string_view declared_length;  // a HEAD handler may state the GET body's length
  for (const auto& [name, value] : response.headers) {
    const FieldKind kind = classify_field(name);
    if (kind == FieldKind::kContentLength) declared_length = value;
    if (kind == FieldKind::kContentLength || kind == FieldKind::kFraming) continue;
    if (name.empty() || !safe_text(name) || !safe_text(value)) continue;
    has_date = has_date || kind == FieldKind::kDate;
    has_id = has_id || kind == FieldKind::kRequestId;
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_date) out.append("Date: ").append(http_date()).append("\r\n");
  if (!has_id && !params.request_id.empty()) {
    out.append("X-Request-Id: ").append(params.request_id).append("\r\n");
  }
  if (status_has_body(response.status) && response.stream) {
    // A streamed body: its length when known, else chunked (HTTP/1.0: until the close).
    if (auto length = response.stream->length()) {
      out += "Content-Length: ";
      append_number(out, *length);
      out += "\r\n";
    } else if (!params.head_request && !params.http10) {
      out += "Transfer-Encoding: chunked\r\n";
    }
  } else if (status_has_body(response.status)) {
    out += "Content-Length: ";
    bool digits_only = !declared_length.empty() &&
                       declared_length.find_first_not_of("0123456789") == std::string_view::npos;
    if (params.head_request && response.body.empty() && digits_only) {
      out += declared_length;
    } else {
      append_number(out, response.body.size());
    }
    out += "\r\n";
  }
  if (!params.keep_alive) {
    out += "Connection: close\r\n";
  } else if (params.http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
}

std::string_view http_date() {
  static constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed",
                                                            "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  thread_local std::array<char, 32> text{};
  thread_local std::size_t length = 0;
  thread_local std::time_t formatted_at = -1;
  std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  if (now != formatted_at) {
    std::tm tm{};
    gmtime_r(&now, &tm);
    // Formatted by hand: strftime's %a and %b follow the C locale, which an app may change.
    int n = std::snprintf(text.data(), text.size(), "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT",
                          kDays[static_cast<std::size_t>(tm.tm_wday)].data(), tm.tm_mday,
                          kMonths[static_cast<std::size_t>(tm.tm_mon)].data(), tm.tm_year + 1900,
                          tm.tm_hour, tm.tm_min, tm.tm_sec);
    length = n > 0 ? static_cast<std::size_t>(n) : 0;
    formatted_at = now;
  }
  return {text.data(), length};
}

void new_request_id(std::string& out) {
  static const std::uint64_t seed = std::random_device{}() * 0x100000001ULL;
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t id = mix(seed + counter.fetch_add(1, std::memory_order_relaxed));
  static constexpr std::string_view kHex = "0123456789abcdef";
  out.resize(16);
  for (int i = 15; i >= 0; --i, id >>= 4) out[static_cast<std::size_t>(i)] = kHex[id & 0xF];
}

bool acceptable_request_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void split_target(std::string_view target, std::string& path, std::string& query) {
  if (auto scheme = target.find("://");
      scheme != std::string_view::npos && scheme < target.find_first_of("/?")) {
    auto path_start = target.find_first_of("/?", scheme + 3);
    target = path_start == std::string_view::npos ? std::string_view() : target.substr(path_start);
  }
  auto question = target.find('?');
  std::string_view p = target.substr(0, question);
  path.assign(p.empty() ? std::string_view("/") : p);
  if (question == std::string_view::npos) {
    query.clear();
  } else {
    query.assign(target.substr(question + 1));
  }
}

}  // namespace cachekit::server::detail
