// Deliberate expiry. Removing a URI's header list is what makes every variant unreachable on
// any backend (the next store mints a new epoch; header_list.h explains why); the no-Vary
// pages, whose keys are known without listing, are erased with it. That is all a write
// (POST/PUT/PATCH/DELETE) does: anyone can send one, and listing the store per write would
// let unauthenticated traffic run a full SCAN on Redis, or read every file of the file
// backend, per request. The orphaned variants expire with their own timeout.
//
// The explicit invalidate(uri) — an operator's call — also lists the store (when the backend
// can) to erase the variants themselves, so they stop taking memory at once.
//
// Listing uses the backend's glob, then each key is checked against the exact shape of a page
// key, because a key_prefix containing '.' (or a glob that matches more than it should) must
// never lead to erasing another prefix's pages.

#include <algorithm>

#include "cachekit/http/cache_key.h"
#include "core/log.h"
#include "http/page_cache_impl.h"
#include "http/page_keys.h"
#include "http/text.h"

namespace cachekit::http {

namespace {

constexpr std::string_view kHeaderHead = "views.decorators.cache.cache_header.";
constexpr std::string_view kPageHead = "views.decorators.cache.cache_page.";

bool is_md5_hex(std::string_view s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// "<METHOD>.<md5>.<md5>" with an upper-case method token; `uri_md5` pins the middle one.
bool is_page_tail(std::string_view tail, std::string_view uri_md5 = {}) {
  std::size_t dot = tail.find('.');
  if (dot == 0 || dot == std::string_view::npos || tail.size() != dot + 1 + 32 + 1 + 32) {
    return false;
  }
  std::string_view method = tail.substr(0, dot);
  std::string_view url_hash = tail.substr(dot + 1, 32);
  return std::all_of(method.begin(), method.end(), [](char c) { return c >= 'A' && c <= 'Z'; }) &&
         tail[dot + 33] == '.' && is_md5_hex(url_hash) && is_md5_hex(tail.substr(dot + 34)) &&
         (uri_md5.empty() || url_hash == uri_md5);
}

// Caller keys matching `pattern` whose part after `head` passes `keep`; nullopt when the
// backend cannot list keys (or the listing failed).
template <class Keep>
std::optional<std::vector<std::string>> list_keys(const Cache& cache, const std::string& head,
                                                  Keep keep) {
  auto keys = cache.strict().keys(escape_glob(head) + "*");
  if (!keys.ok()) {
    cachekit::detail::logger()->warn(
        "page cache: cannot list keys to invalidate ({}); pages expire with their timeout",
        keys.status().to_string());
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (std::string& k : *keys) {
    if (k.starts_with(head) && keep(std::string_view(k).substr(head.size()))) {
      out.push_back(std::move(k));
    }
  }
  return out;
}

// scheme://host/rest with the host in its canonical spelling, as cache_uri() builds keys.
std::string normalized_uri(std::string_view uri) {
  std::size_t start = uri.find("://");
  if (start == std::string_view::npos) return std::string(uri);
  std::string scheme = detail::lower(uri.substr(0, start));
  start += 3;
  std::size_t end = std::min(uri.find_first_of("/?", start), uri.size());
  std::string out = scheme + "://";
  detail::append_canonical_host(out, detail::lower(uri.substr(start, end - start)), scheme);
  out += uri.substr(end);
  return out;
}

}  // namespace

namespace {

// The keys of `uri`'s pages stored without Vary (known without listing).
std::vector<std::string> unvaried_page_keys(std::string_view key_prefix, std::string_view uri) {
  std::vector<std::string> pages;
  Request bare;  // no headers: the values hash is md5(""), the key of a page without Vary
  for (std::string_view method : {"GET", "HEAD"}) {
    pages.push_back(cache_page_key(key_prefix, method, uri, bare, {}));
  }
  return pages;
}

}  // namespace

bool PageCache::Impl::forget(std::string_view uri) const {
  bool removed = cache().erase(cache_header_key(options.key_prefix, uri));
  return cache().erase_many(unvaried_page_keys(options.key_prefix, uri)) > 0 || removed;
}

bool PageCache::Impl::invalidate(std::string_view raw_uri) const {
  std::string uri = normalized_uri(raw_uri);
  bool removed = cache().erase(cache_header_key(options.key_prefix, uri));
  std::vector<std::string> pages = unvaried_page_keys(options.key_prefix, uri);
  if (cache().backend_info().supports_keys) {
    std::string head = std::string(kPageHead) + options.key_prefix + ".";
    std::string uri_md5 = md5_hex(uri);
    if (auto variants = list_keys(
            cache(), head, [&](std::string_view tail) { return is_page_tail(tail, uri_md5); })) {
      pages.insert(pages.end(), variants->begin(), variants->end());
    }
  }
  std::sort(pages.begin(), pages.end());
  pages.erase(std::unique(pages.begin(), pages.end()), pages.end());
  return cache().erase_many(pages) > 0 || removed;
}

std::size_t PageCache::Impl::invalidate_all() const {
  std::string page_head = std::string(kPageHead) + options.key_prefix + ".";
  std::string header_head = std::string(kHeaderHead) + options.key_prefix + ".";
  auto pages = list_keys(cache(), page_head, [](std::string_view t) { return is_page_tail(t); });
  if (!pages) return 0;
  auto lists = list_keys(cache(), header_head, is_md5_hex);
  if (lists) cache().erase_many(*lists);
  return cache().erase_many(*pages);
}

}  // namespace cachekit::http
