// Django's page-cache key scheme (django/utils/cache.py: _generate_cache_key,
// _generate_cache_header_key, get_cache_key, learn_cache_key) with one addition: the Host
// header is validated before it reaches a key (Django's get_host() does that too, but raises
// DisallowedHost; here a bad host just makes the request uncacheable).

#include "cachekit/http/cache_key.h"

#include <openssl/evp.h>

#include <algorithm>
#include <memory>

#include "cachekit/http/cache_policy.h"
#include "http/header_list.h"
#include "http/page_keys.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

constexpr std::string_view kHeaderKeyHead = "views.decorators.cache.cache_header.";
constexpr std::string_view kPageKeyHead = "views.decorators.cache.cache_page.";

bool is_hex_lower(char c) noexcept { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_host_char(char c) noexcept {
  return (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '-';
}

// Django's host_validation_re on a lower-cased host:
//   ^([a-z0-9.-]+|\[[a-f0-9]*:[a-f0-9\.:]+\])(:[0-9]+)?$
// Returns the domain part (trailing dot removed) or nullopt.
std::optional<std::string_view> split_domain(std::string_view host) {
  std::size_t end = 0;
  if (!host.empty() && host.front() == '[') {
    end = host.find(']');
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view inside = host.substr(1, end - 1);
    std::size_t colon = inside.find(':');
    if (colon == std::string_view::npos || colon + 1 >= inside.size()) return std::nullopt;
    if (!std::all_of(inside.begin(), inside.begin() + static_cast<std::ptrdiff_t>(colon),
                     is_hex_lower) ||
        !std::all_of(inside.begin() + static_cast<std::ptrdiff_t>(colon) + 1, inside.end(),
                     [](char c) { return is_hex_lower(c) || c == '.' || c == ':'; })) {
      return std::nullopt;
    }
    ++end;
  } else {
    while (end < host.size() && is_host_char(host[end])) ++end;
    if (end == 0) return std::nullopt;
  }
  std::string_view port = host.substr(end);
  if (!port.empty() && (port.front() != ':' || port.size() < 2 ||
                        !std::all_of(port.begin() + 1, port.end(), is_digit))) {
    return std::nullopt;
  }
  std::string_view domain = host.substr(0, end);
  if (domain.ends_with('.')) domain.remove_suffix(1);
  if (domain.empty()) return std::nullopt;
  return domain;
}

// Django's is_same_domain: ".example.com" matches example.com and its subdomains.
bool host_allowed(std::string_view domain, std::span<const std::string> allowed) {
  if (allowed.empty()) return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& raw) {
    std::string pattern = detail::lower(raw);
    if (pattern == "*" || pattern == domain) return true;
    return pattern.size() > 1 && pattern.front() == '.' &&
           (domain.ends_with(pattern) || domain == std::string_view(pattern).substr(1));
  });
}

bool md5_available() {
  static const bool available = !md5_hex("").empty();
  return available;
}

// RFC 9110 §5.6.2 token characters.
bool is_tchar(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Does request header `header` have the CGI name `cgi` (Accept-Language ↔ HTTP_ACCEPT_LANGUAGE)?
// Compared in place — this runs for every request header on every lookup. A name containing
// '_' never matches: WSGI servers drop those so that X_Y cannot pose as X-Y.
bool has_cgi_name(std::string_view header, std::string_view cgi) noexcept {
  if (!cgi.starts_with("HTTP_") || cgi.size() - 5 != header.size()) return false;
  for (std::size_t i = 0; i < header.size(); ++i) {
    char c = header[i];
    if (c == '_') return false;
    if ((c == '-' ? '_' : detail::ascii_upper(c)) != cgi[i + 5]) return false;
  }
  return true;
}

}  // namespace

std::string md5_hex(std::string_view data) {
  // The algorithm is fetched once (OpenSSL 3's implicit fetch in EVP_md5() locks on every
  // call) and each thread reuses one context (EVP_Digest allocates and wipes a new one).
  static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                               &EVP_MD_CTX_free);
  if (md5 == nullptr || context == nullptr) return {};
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestInit_ex2(context.get(), md5, nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &size) != 1) {
    return {};
  }
  return text::hex_encode(std::string_view(reinterpret_cast<const char*>(digest), size));
}

std::optional<std::string> validated_host(std::string_view host,
                                          std::span<const std::string> allowed_hosts) {
  std::string lowered = detail::lower(host);
  auto domain = split_domain(lowered);
  if (!domain || !host_allowed(*domain, allowed_hosts)) return std::nullopt;
  return lowered;
}

std::optional<std::string> cache_uri(const Request& request,
                                     std::span<const std::string> allowed_hosts) {
  if (request.scheme != "http" && request.scheme != "https") return std::nullopt;
  // Several Host fields are a request smuggling signal (RFC 9112 §3.2 says 400): never key it.
  if (request.headers.get_all("Host").size() != 1) return std::nullopt;
  auto host = validated_host(request.host(), allowed_hosts);
  if (!host || !md5_available()) return std::nullopt;
  std::string uri = request.scheme;
  uri += "://";
  detail::append_canonical_host(uri, *host, request.scheme);
  uri += request.target();
  return uri;
}

std::vector<std::string> vary_header_list(std::string_view vary) {
  std::vector<std::string> out;
  for (std::string_view member : detail::split_list(vary)) {
    // A member that is not a field name can select nothing sensible: as unstorable as `*`.
    if (member == "*" || !std::all_of(member.begin(), member.end(), is_tchar)) return {"*"};
    std::string name = "HTTP_";
    for (char c : member) name += c == '-' ? '_' : detail::ascii_upper(c);
    out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> vary_header_list(const Response& response) {
  return vary_header_list(detail::joined(response.headers, "Vary"));
}

std::optional<std::string> request_header_value(const Request& request, std::string_view cgi) {
  std::optional<std::string> value;
  for (const auto& [name, v] : request.headers) {
    if (!has_cgi_name(name, cgi)) continue;
    if (value) {
      *value += ',';
      *value += v;
    } else {
      value = v;
    }
  }
  return value;
}

std::string cache_header_key(std::string_view key_prefix, std::string_view uri) {
  return detail::header_key_for(key_prefix, md5_hex(uri));
}

std::string cache_page_key(std::string_view key_prefix, std::string_view method,
                           std::string_view uri, const Request& request,
                           std::span<const std::string> header_list) {
  return detail::page_key_for(key_prefix, method, md5_hex(uri), request, header_list);
}

namespace detail {

void append_canonical_host(std::string& out, std::string_view host, std::string_view scheme) {
  std::size_t domain_end = !host.empty() && host.front() == '[' ? host.find(']') : host.find(':');
  if (domain_end == std::string_view::npos) {
    domain_end = host.size();
  } else if (host[domain_end] == ']') {
    ++domain_end;
  }
  std::string_view domain = host.substr(0, domain_end);
  std::string_view port = host.substr(domain_end);  // "" or ":digits"
  if (domain.size() > 1 && domain.ends_with('.')) domain.remove_suffix(1);
  out += domain;
  std::string_view digits = port.empty() ? port : port.substr(1);
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  bool is_default = (scheme == "http" && digits == "80") || (scheme == "https" && digits == "443");
  if (!is_default) out += port;
}

std::string header_key_for(std::string_view key_prefix, std::string_view uri_md5) {
  std::string key(kHeaderKeyHead);
  key += key_prefix;
  key += '.';
  key += uri_md5;
  return key;
}

std::string page_key_for(std::string_view key_prefix, std::string_view method,
                         std::string_view uri_md5, const Request& request,
                         std::span<const std::string> header_list) {
  // Values back to back with no separator, exactly as Django feeds its md5 (so ambiguous
  // concatenations share a key; the page cache re-checks the stored values on every hit).
  std::string values;
  for (const std::string& name : header_list) {
    if (auto v = request_header_value(request, name)) values += *v;
  }
  std::string key(kPageKeyHead);
  key += key_prefix;
  key += '.';
  key += method;
  key += '.';
  key += uri_md5;
  key += '.';
  key += md5_hex(values);
  return key;
}

std::string selecting_values(const Request& request, std::span<const std::string> names) {
  std::string out;
  for (const std::string& name : names) {
    auto v = request_header_value(request, name);
    out += v ? '\1' : '\0';
    auto size = static_cast<std::uint32_t>(v ? v->size() : 0);  // little-endian, as entry.h
    for (int i = 0; i < 4; ++i) out += static_cast<char>((size >> (8 * i)) & 0xff);
    if (v) out += *v;
  }
  return out;
}

}  // namespace detail

std::optional<std::string> get_cache_key(const Request& request, const Cache& cache,
                                         const KeyOptions& options, std::string_view method) {
  auto uri = cache_uri(request, options.allowed_hosts);
  if (!uri) return std::nullopt;
  auto list = detail::read_header_list(cache, cache_header_key(options.key_prefix, *uri));
  if (!list) return std::nullopt;
  return cache_page_key(options.key_prefix, method, *uri, request, list->names);
}

std::optional<std::string> learn_cache_key(const Request& request, const Response& response,
                                           Cache& cache, std::chrono::seconds timeout,
                                           const KeyOptions& options) {
  auto uri = cache_uri(request, options.allowed_hosts);
  if (!uri) return std::nullopt;
  std::vector<std::string> names = vary_header_list(response);
  if (!names.empty() && names.front() == "*") return std::nullopt;
  std::string header_key = cache_header_key(options.key_prefix, *uri);
  const Clock& clock =
      cache.options().clock != nullptr ? *cache.options().clock : SystemClock::instance();
  auto list =
      detail::learn_header_list(cache, header_key, std::move(names),
                                detail::read_header_list(cache, header_key), timeout, clock.now());
  return cache_page_key(options.key_prefix, request.method, *uri, request, list.names);
}

}  // namespace cachekit::http
