#pragma once
// The page-key builders with the URI's MD5 already computed: a lookup hashes the URI once for
// both the header-list key and the page key(s) (MD5 through OpenSSL's EVP costs more than the
// store's get).

#include <span>
#include <string>
#include <string_view>

#include "cachekit/http/message.h"

namespace cachekit::http::detail {

// "views.decorators.cache.cache_header.<prefix>.<uri_md5>".
std::string header_key_for(std::string_view key_prefix, std::string_view uri_md5);
// "views.decorators.cache.cache_page.<prefix>.<method>.<uri_md5>.<md5(values)>".
std::string page_key_for(std::string_view key_prefix, std::string_view method,
                         std::string_view uri_md5, const Request& request,
                         std::span<const std::string> header_list);

}  // namespace cachekit::http::detail
