#pragma once
// The page cache's keys and variant selection, as its lookup and store use them (the public
// forms are in cachekit/http/cache_key.h; all are implemented in cache_key.cc): the header-list
// and page keys built from the URI's MD5 already computed — a lookup hashes the URI once for
// every key (MD5 through OpenSSL's EVP costs more than the store's get) — and the request's
// values of the Vary-selected headers that a stored page is checked against.

#include <span>
#include <string>
#include <string_view>

#include "cachekit/http/message.h"

namespace cachekit::http::detail {

// Appends `host` (lower-case, as validated_host() returns it) in its one canonical spelling:
// a domain's trailing dot and the scheme's default port (http 80, https 443) dropped, so
// `EXAMPLE.com.:80` and `example.com` make one key. No allocation beyond `out`'s growth.
void append_canonical_host(std::string& out, std::string_view host, std::string_view scheme);
// "views.decorators.cache.cache_header.<prefix>.<uri_md5>".
std::string header_key_for(std::string_view key_prefix, std::string_view uri_md5);
// "views.decorators.cache.cache_page.<prefix>.<method>.<uri_md5>.<md5(values)>".
std::string page_key_for(std::string_view key_prefix, std::string_view method,
                         std::string_view uri_md5, const Request& request,
                         std::span<const std::string> header_list);
// The request's values of the headers named (CGI form), unambiguously encoded (presence and
// length of each), so two requests select the same variant exactly when these are equal.
// (The page key feeds Django's md5 the values back to back, which is ambiguous; a hit
// compares these.)
std::string selecting_values(const Request& request, std::span<const std::string> names);

}  // namespace cachekit::http::detail
