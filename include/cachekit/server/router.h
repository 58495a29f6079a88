#pragma once
// Router: maps (method, path) to a handler, with path parameters, Django's APPEND_SLASH, 404,
// 405 with Allow, and an ordered middleware chain.
//
//   Router router;
//   router.get("/store/products/{id}/", [](http::Request& r) {
//     return http::Response::text("product " + r.path_params.at("id"));
//   });
//   router.get("/playground/hello/", http::cache_page(5min, hello, {.cache = &cache}));
//   router.view("/store/", std::make_shared<StoreView>(), cache_get(300s, {.cache = &cache}));
//   router.use(http::cache_middleware({.cache = &cache}));  // first = outermost
//
// Patterns start with '/'; a segment "{name}" matches one non-empty path segment, whose
// percent-decoded value lands in request.path_params["name"]; every other segment matches
// literally, and a trailing '/' is significant (Django's style). Routes without parameters are
// looked up first (a hash map), then parameterised ones in registration order.
//
// Answers the router makes itself: 404 Not Found; 405 with an Allow header when the path
// matches but the method does not; OPTIONS → 200 with Allow unless a handler takes OPTIONS;
// HEAD runs the GET handler (the server drops the body); APPEND_SLASH: a GET/HEAD for /foo that
// matches nothing while /foo/ matches → 301 to /foo/ with the query kept.
//
// Middleware (Server::use or Router::use) wraps every answer, including 404/405/301: listed
// first is outermost. Routing happens before the chain runs, so middleware sees path_params.
//
// Thread-safety: register everything before the server starts; afterwards the router is
// read-only and resolve()/respond()/handle() may run concurrently. Registration errors (a bad
// pattern, a method registered twice for one pattern) throw std::invalid_argument.

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/http/handler.h"
#include "cachekit/http/message.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/view.h"

namespace cachekit::server {

// What a route runs for one method. `page_cache` is set when the handler came from cache_page
// (a CachedHandler): the server then tries page_cache->fetch() on its io thread first.
struct Endpoint {
  http::Handler handler{};
  std::shared_ptr<const http::PageCache> page_cache{};
};

struct RouterOptions {
  bool append_slash = true;  // Django's APPEND_SLASH
};

// The outcome of routing one request.
struct Resolution {
  enum class Kind : std::uint8_t { kFound, kNotFound, kMethodNotAllowed, kRedirect, kOptions };
  Kind kind = Kind::kNotFound;
  const Endpoint* endpoint = nullptr;  // kFound
  std::size_t route = 0;               // the route's index; route_count() when none matched
  std::string_view allow{};            // kMethodNotAllowed, kOptions: the Allow header value
  std::string location{};              // kRedirect
};

class Router {
 public:
  explicit Router(RouterOptions options = {});
  ~Router();
  Router(Router&&) noexcept;
  Router& operator=(Router&&) noexcept;

  // Registers `handler` (a callable, an http::Handler or an http::CachedHandler) for one
  // method. Returns *this for chaining.
  template <class H>
  Router& get(std::string pattern, H&& handler) {
    return route({"GET"}, std::move(pattern), std::forward<H>(handler));
  }
  template <class H>
  Router& post(std::string pattern, H&& handler) {
    return route({"POST"}, std::move(pattern), std::forward<H>(handler));
  }
  template <class H>
  Router& put(std::string pattern, H&& handler) {
    return route({"PUT"}, std::move(pattern), std::forward<H>(handler));
  }
  template <class H>
  Router& patch(std::string pattern, H&& handler) {
    return route({"PATCH"}, std::move(pattern), std::forward<H>(handler));
  }
  template <class H>
  Router& delete_(std::string pattern, H&& handler) {  // `delete` is a C++ keyword
    return route({"DELETE"}, std::move(pattern), std::forward<H>(handler));
  }
  // Registers one handler for several methods (any token; lower case is upper-cased).
  Router& route(std::initializer_list<std::string_view> methods, std::string pattern,
                http::Handler handler);
  Router& route(std::initializer_list<std::string_view> methods, std::string pattern,
                http::CachedHandler handler);

  // Registers the methods V overrides (see view.h); the view is shared by all requests.
  template <class V>
  // performance-unnecessary-value-param misreads the dependent call below as a const use of
  // `pattern`, which is moved into add_view.
  // NOLINTNEXTLINE(performance-unnecessary-value-param)
  requires std::derived_from<V, View> Router& view(std::string pattern, std::shared_ptr<V> view,
                                                   const ViewOptions& options = {}) {
    return add_view(std::move(pattern), std::shared_ptr<View>(std::move(view)),
                    overridden_methods<V>(), options);
  }

  // The handler for every request no route matches, whatever its method (a reverse proxy's
  // forwarding handler): such a request is kFound with this endpoint instead of 404, 405,
  // OPTIONS or an APPEND_SLASH redirect. Registering it twice throws std::invalid_argument.
  Router& fallback(http::Handler handler);
  Router& fallback(http::CachedHandler handler);

  // Appends a middleware to the chain (the first one added is the outermost).
  Router& use(http::Middleware middleware);

  // Routes `request` (method and path) and fills request.path_params on a match. Never runs
  // user code.
  [[nodiscard]] Resolution resolve(http::Request& request) const;
  // Runs the middleware chain around the answer for `resolution`: the endpoint's handler, or
  // the router's own 404/405/301/OPTIONS response. Exceptions from user code propagate.
  [[nodiscard]] http::Response respond(const Resolution& resolution, http::Request& request) const;
  // resolve() then respond().
  [[nodiscard]] http::Response handle(http::Request& request) const;

  // The router's own answer for a resolution that is not kFound (404, 405, 301, OPTIONS),
  // without middleware: cheap enough for an io thread.
  [[nodiscard]] static http::Response own_answer(const Resolution& resolution);

  [[nodiscard]] bool has_middleware() const noexcept;
  [[nodiscard]] std::size_t route_count() const noexcept;
  // The pattern of route `index` ("unmatched" past the end) — the metrics label.
  [[nodiscard]] std::string_view route_pattern(std::size_t index) const noexcept;

 private:
  struct Impl;
  Router& add(std::initializer_list<std::string_view> methods, std::string pattern,
              const Endpoint& endpoint);
  Router& add_view(std::string pattern, const std::shared_ptr<View>& view, std::uint8_t methods,
                   const ViewOptions& options);
  [[nodiscard]] http::Response run_chain(std::size_t index, const Resolution& resolution,
                                         http::Request& request) const;

  std::unique_ptr<Impl> impl_;
};

}  // namespace cachekit::server
