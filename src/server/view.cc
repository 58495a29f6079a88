#include "cachekit/server/view.h"

namespace cachekit::server {

http::Response View::get(http::Request&) { return method_not_allowed(); }
http::Response View::post(http::Request&) { return method_not_allowed(); }
http::Response View::put(http::Request&) { return method_not_allowed(); }
http::Response View::patch(http::Request&) { return method_not_allowed(); }
http::Response View::delete_(http::Request&) { return method_not_allowed(); }

http::Response View::method_not_allowed() const {
  auto response = http::Response::text("Method Not Allowed", 405);
  response.headers.set("Allow", allow_.empty() ? std::string("OPTIONS") : allow_);
  return response;
}

ViewOptions cache_get(std::chrono::seconds timeout, http::CachePageOptions options) {
  // Built by cache_page itself so a cached view method and a cache_page'd function key and
  // expire their pages identically; only its PageCache is kept (the handler is the view's).
  http::CachedHandler cached = http::cache_page(
      timeout, [](http::Request&) { return http::Response{}; }, std::move(options));
  return ViewOptions{.cache_get = std::move(cached.page_cache)};
}

}  // namespace cachekit::server
