// cache_page and the site-wide middleware are both PageCache::serve: Django splits the
// middleware in two (Update first, Fetch last) so that Fetch runs after the middleware that
// changes the request (Locale) and Update after every middleware that adds Vary. One
// middleware placed first in the chain gets the second property; the first matters only for
// middleware that rewrites the request in ways Vary does not capture, which Django's own
// docs advise against. The lookup needs no "update cache" mark: serve() only stores what its
// own lookup missed, which is exactly Django's rule.

#include <stdexcept>

#include "cachekit/http/page_cache.h"

namespace cachekit::http {

CachedHandler cache_page(std::chrono::seconds timeout, Handler handler, CachePageOptions options) {
  if (options.cache == nullptr) throw std::invalid_argument("cache_page: options.cache is null");
  PageCacheOptions page;
  page.cache = options.cache;
  page.key_prefix = std::move(options.key_prefix);
  page.page_timeout = timeout;
  page.allowed_hosts = std::move(options.allowed_hosts);
  page.stale_while_revalidate = options.stale_while_revalidate;
  page.stale_if_error = options.stale_if_error;
  return CachedHandler{std::move(handler), std::make_shared<const PageCache>(std::move(page))};
}

Middleware cache_middleware(PageCacheOptions options) {
  if (options.cache == nullptr) {
    throw std::invalid_argument("cache_middleware: options.cache is null");
  }
  auto page_cache = std::make_shared<const PageCache>(std::move(options));
  return [page_cache](Request& request, const Next& next) {
    return page_cache->serve_chained(request, next);
  };
}

}  // namespace cachekit::http
