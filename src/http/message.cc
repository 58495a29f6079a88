#include "cachekit/http/message.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "http/text.h"

namespace cachekit::http {

namespace {

using detail::trim;

// application/x-www-form-urlencoded decoding: `+` is a space, a valid %XX a byte; a broken
// escape is kept literally (as Python's unquote_plus does), so the result is never nullopt.
std::string form_decode(std::string_view s) {
  return text::percent_decode(s, text::kForm).value_or(std::string());
}

// NOLINTNEXTLINE(performance-unnecessary-value-param): a sink; every caller moves its string in.
Response with_type(std::string body, int status, std::string_view type) {
  Response r;
  r.status = status;
  r.headers.set("Content-Type", std::string(type));
  r.body = Bytes(body);
  return r;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept { return text::iequals(a, b); }

Headers& Headers::operator=(const Headers& other) {
  fields_ = other.fields_;
  cookie_read_.store(other.cookie_read(), std::memory_order_relaxed);
  return *this;
}

Headers& Headers::operator=(Headers&& other) noexcept {
  fields_ = std::move(other.fields_);
  cookie_read_.store(other.cookie_read(), std::memory_order_relaxed);
  return *this;
}

// One length check for every other name, so the hit path (which looks up response fields)
// pays nothing measurable.
void Headers::note_lookup(std::string_view name) const noexcept {
  if (name.size() == 6 && iequals(name, "Cookie")) {
    cookie_read_.store(true, std::memory_order_relaxed);
  }
}

std::optional<std::string_view> Headers::get(std::string_view name) const noexcept {
  note_lookup(name);
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) return std::string_view(v);
  }
  return std::nullopt;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
  note_lookup(name);
  std::vector<std::string_view> out;
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) out.emplace_back(v);
  }
  return out;
}

void Headers::set(std::string_view name, std::string value) {
  // Replace in place (the first occurrence keeps its position, as a dict assignment would),
  // then drop the other occurrences.
  auto first = std::find_if(fields_.begin(), fields_.end(),
                            [&](const Field& f) { return iequals(f.first, name); });
  if (first == fields_.end()) {
    fields_.emplace_back(std::string(name), std::move(value));
    return;
  }
  first->second = std::move(value);
  auto keep = static_cast<std::size_t>(first - fields_.begin());
  std::size_t i = 0;
  std::erase_if(fields_, [&](const Field& f) { return i++ != keep && iequals(f.first, name); });
}

void Headers::add(std::string_view name, std::string value) {
  fields_.emplace_back(std::string(name), std::move(value));
}

std::size_t Headers::erase(std::string_view name) {
  return std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::optional<std::string> Request::query_param(std::string_view name) const {
  std::string_view rest = query;
  while (!rest.empty()) {
    std::size_t amp = rest.find('&');
    std::string_view pair = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    std::size_t eq = pair.find('=');
    std::string_view raw_name = pair.substr(0, eq);
    if (form_decode(raw_name) != name) continue;
    return eq == std::string_view::npos ? std::string() : form_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string> Request::cookie(std::string_view name) const {
  for (std::string_view line : headers.get_all("Cookie")) {
    while (!line.empty()) {
      std::size_t semi = line.find(';');
      std::string_view pair = trim(line.substr(0, semi));
      line = semi == std::string_view::npos ? std::string_view() : line.substr(semi + 1);
      std::size_t eq = pair.find('=');
      if (eq == std::string_view::npos) continue;
      if (trim(pair.substr(0, eq)) != name) continue;
      std::string_view value = trim(pair.substr(eq + 1));
      // RFC 6265 allows a DQUOTE-wrapped cookie-value; the quotes are not part of it.
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return std::string(value);
    }
  }
  return std::nullopt;
}

std::string_view Request::host() const noexcept { return headers.get("Host").value_or(""); }

std::string Request::target() const {
  std::string out = path;
  if (!query.empty()) {
    out += '?';
    out += query;
  }
  return out;
}

std::string Request::absolute_uri() const {
  std::string out = scheme;
  out += "://";
  out += host();
  out += target();
  return out;
}

Response Response::text(std::string body, int status) {
  return with_type(std::move(body), status, "text/plain; charset=utf-8");
}

Response Response::html(std::string body, int status) {
  return with_type(std::move(body), status, "text/html; charset=utf-8");
}

Response Response::json(const nlohmann::json& value, int status) {
  return with_type(value.dump(), status, "application/json");
}

Response Response::redirect(std::string location, int status) {
  Response r;
  r.status = status;
  r.headers.set("Location", std::move(location));
  return r;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#x27;";
        break;  // Django's spelling
      default:
        out += c;
    }
  }
  return out;
}

std::string_view reason_phrase(int status) noexcept {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 203:
      return "Non-Authoritative Information";
    case 204:
      return "No Content";
    case 205:
      return "Reset Content";
    case 206:
      return "Partial Content";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Content Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 421:
      return "Misdirected Request";
    case 422:
      return "Unprocessable Content";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "";
  }
}

}  // namespace cachekit::http
