#pragma once
// Page-cache keys, in Django's exact scheme (so Django's published key vectors hold):
//
//   header-list entry  views.decorators.cache.cache_header.<prefix>.<md5(uri)>
//   page entry         views.decorators.cache.cache_page.<prefix>.<METHOD>.<md5(uri)>.<md5(v)>
//
// where uri is scheme://host/path?query and v the request's values of the headers the
// response's Vary names, concatenated in the order of their sorted CGI names (HTTP_X_Y).
// Both keys then pass through the Cache's own key function (its prefix and version).
//
// One deliberate difference from Django: the host is VALIDATED before it can reach a key. A
// request whose Host is missing, syntactically illegal (Django's host regex: letters, digits,
// `.` and `-`, or a bracketed IPv6 literal, then an optional :port) or not in allowed_hosts
// has no key at all, so it is never served from nor stored in the cache (poisoning by a forged
// Host cannot touch other hosts' pages). A valid host is keyed in one spelling: lower-cased,
// without a domain's trailing dot or the scheme's default port (:80 http, :443 https). Scheme
// must be http or https. Django's i18n/timezone key suffixes are not added (no USE_I18N), so
// Accept-Language is kept in the Vary list like any other header.
//
// Pure functions except get_cache_key / learn_cache_key, which read / write the Cache (they
// fail open like the plain Cache API). All are thread-safe.

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cachekit/cache.h"
#include "cachekit/http/message.h"

namespace cachekit::http {

struct KeyOptions {
  std::string key_prefix{};  // Django's key_prefix / CACHE_MIDDLEWARE_KEY_PREFIX
  // Django's ALLOWED_HOSTS: "example.com" (exact), ".example.com" (the domain and every
  // subdomain), "*" (any). Empty: any syntactically valid host. Ports are ignored.
  std::vector<std::string> allowed_hosts{};
};

// The lower-case hex MD5 of `data` ("" only if the crypto library refuses MD5, e.g. FIPS mode
// without the default provider; callers then treat the request as uncacheable).
[[nodiscard]] std::string md5_hex(std::string_view data);

// The host (with :port if given), lower-cased, when `host` is well-formed and allowed;
// nullopt otherwise (empty, illegal characters, or not matching `allowed_hosts`).
[[nodiscard]] std::optional<std::string> validated_host(
    std::string_view host, std::span<const std::string> allowed_hosts = {});

// scheme://host/path?query with the validated host in its canonical spelling (above:
// `EXAMPLE.com.:80` → `example.com` for http); nullopt when the request cannot be keyed
// (scheme other than http/https, or validated_host() refused the Host header).
[[nodiscard]] std::optional<std::string> cache_uri(const Request& request,
                                                   std::span<const std::string> allowed_hosts = {});

// The CGI names of the headers a Vary value selects, sorted and without duplicates:
// "Accept-Language, cookie" → {"HTTP_ACCEPT_LANGUAGE", "HTTP_COOKIE"}. `*` — or a member that
// is not a field name (RFC 9110 token) — is returned as {"*"}: such a response is never stored.
[[nodiscard]] std::vector<std::string> vary_header_list(std::string_view vary);
// The same for every Vary field of a response, joined.
[[nodiscard]] std::vector<std::string> vary_header_list(const Response& response);

// The request's value of a header named in CGI form (HTTP_ACCEPT_LANGUAGE → Accept-Language;
// repeated fields joined with ","), or nullopt when the request lacks it. A request header
// whose name contains '_' never matches (it would alias X-Y as WSGI servers do).
[[nodiscard]] std::optional<std::string> request_header_value(const Request& request,
                                                              std::string_view cgi_name);

// "views.decorators.cache.cache_header.<prefix>.<md5(uri)>".
[[nodiscard]] std::string cache_header_key(std::string_view key_prefix, std::string_view uri);
// "views.decorators.cache.cache_page.<prefix>.<method>.<md5(uri)>.<md5(values)>" where values
// are the request's values of `header_list` back to back (absent headers skipped).
[[nodiscard]] std::string cache_page_key(std::string_view key_prefix, std::string_view method,
                                         std::string_view uri, const Request& request,
                                         std::span<const std::string> header_list);

// Django's get_cache_key: the page key for `method`, built from the header list learned for
// the request's URI. nullopt when no header list is stored (the page must be regenerated),
// when the request cannot be keyed, or when the store failed.
[[nodiscard]] std::optional<std::string> get_cache_key(const Request& request, const Cache& cache,
                                                       const KeyOptions& options = {},
                                                       std::string_view method = "GET");

// Django's learn_cache_key: stores the header list named by the response's Vary (or an empty
// one) under the header key for `timeout`, and returns the page key for request.method.
// nullopt when the request cannot be keyed or Vary is `*`. A failed store write is ignored
// (fail open): the key is still returned.
[[nodiscard]] std::optional<std::string> learn_cache_key(const Request& request,
                                                         const Response& response, Cache& cache,
                                                         std::chrono::seconds timeout,
                                                         const KeyOptions& options = {});

}  // namespace cachekit::http
