#pragma once
// View: class-based handlers, like Django's django.views.View.
//
//   class ProductView : public cachekit::server::View {
//    public:
//     http::Response get(http::Request& request) override { ... }
//     http::Response post(http::Request& request) override { ... }
//   };
//   router.view("/store/products/{id}/", std::make_shared<ProductView>());
//   // @method_decorator(cache_page(300), name="get"):
//   router.view("/store/", std::make_shared<StoreView>(), cache_get(300s, {.cache = &cache}));
//
// The methods a view serves are the members it overrides: Router::view() detects them at compile
// time (a member that is not overridden is still View's), registers only those, and answers any
// other method with 405 and an Allow header; HEAD is served by get() (the server drops the body)
// and OPTIONS is answered with the Allow header. A view object is shared by every request, so its
// members run concurrently on the server's handler threads: keep per-request state in locals.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "cachekit/http/message.h"
#include "cachekit/http/page_cache.h"

namespace cachekit::server {

class View {
 public:
  View() = default;
  virtual ~View() = default;
  View(const View&) = delete;
  View& operator=(const View&) = delete;

  // Each default answers 405 Method Not Allowed with the Allow header of the methods this view
  // serves (known once it is registered with a Router). Override the ones the view serves.
  virtual http::Response get(http::Request& request);
  virtual http::Response post(http::Request& request);
  virtual http::Response put(http::Request& request);
  virtual http::Response patch(http::Request& request);
  virtual http::Response delete_(http::Request& request);  // `delete` is a C++ keyword

 protected:
  // The 405 response the defaults return.
  [[nodiscard]] http::Response method_not_allowed() const;

 private:
  friend class Router;
  std::string allow_;  // the Allow header value, written once by Router::view()
};

// The methods a View subclass serves, as bits.
enum ViewMethod : std::uint8_t {
  kViewGet = 1U << 0,
  kViewPost = 1U << 1,
  kViewPut = 1U << 2,
  kViewPatch = 1U << 3,
  kViewDelete = 1U << 4,
};

// The methods V overrides (or inherits from an intermediate class that overrides them): taking
// the address of a member that V does not redeclare yields a pointer to View's member. A view
// that overloads one of these names (two `get`s) does not compile here: give the overload
// another name.
template <class V>
requires std::is_base_of_v<View, V>
[[nodiscard]] constexpr std::uint8_t overridden_methods() noexcept {
  using Member = http::Response (View::*)(http::Request&);
  std::uint8_t methods = 0;
  if (!std::is_same_v<decltype(&V::get), Member>) methods |= kViewGet;
  if (!std::is_same_v<decltype(&V::post), Member>) methods |= kViewPost;
  if (!std::is_same_v<decltype(&V::put), Member>) methods |= kViewPut;
  if (!std::is_same_v<decltype(&V::patch), Member>) methods |= kViewPatch;
  if (!std::is_same_v<decltype(&V::delete_), Member>) methods |= kViewDelete;
  return methods;
}

struct ViewOptions {
  // When set, GET and HEAD are answered through this page cache — Django's
  // @method_decorator(cache_page(...), name="get"). The view's other methods go through
  // PageCache::serve too, so a successful POST/PUT/PATCH/DELETE invalidates the cached page.
  // A hit on an in-process store is answered on the server's io thread.
  std::shared_ptr<const http::PageCache> cache_get{};
};

// ViewOptions caching GET for `timeout` exactly as cache_page(timeout, ..., options) would.
// Throws what cache_page throws for a bad configuration (no cache).
[[nodiscard]] ViewOptions cache_get(std::chrono::seconds timeout, http::CachePageOptions options);

}  // namespace cachekit::server
