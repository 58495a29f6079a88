#pragma once
// The storefront's endpoints: the playground (one per step of the caching lesson), the store
// (an expensive query cached with the low-level API, and writes that expire it) and the index
// page listing them all.

#include <string>
#include <string_view>

#include "cachekit/cache.h"
#include "cachekit/server/router.h"
#include "settings.h"
#include "store.h"
#include "upstream.h"

namespace storefront {

// What the hello pages need: their settings, the upstream and the template. The worker renders
// the pages too, without the rest of the App.
struct HelloContext {
  const Settings& settings;
  const UpstreamClient& upstream;
  const std::string& hello_template;  // the text of templates/hello.html
};

// What every handler needs. Outlives the server.
struct App {
  const Settings& settings;
  cachekit::Cache& cache;
  const UpstreamClient& upstream;
  Store& store;
  std::string hello_template;  // the text of templates/hello.html

  [[nodiscard]] HelloContext hello() const { return {settings, upstream, hello_template}; }
};

// /playground/hello/... and the lesson's /playground/hello/.
void add_playground_routes(cachekit::server::Router& router, App& app);
// The low-level step's key (/playground/hello/lowlevel/).
inline constexpr std::string_view kHttpbinResultKey = "httpbin_result";
// The lesson's /playground/hello/ page as its route's handler renders it: hello.html with the
// upstream's answer, or a 502 when the upstream failed. Never throws.
[[nodiscard]] cachekit::http::Response render_hello_page(const HelloContext& hello);
// What the low-level step stores under kHttpbinResultKey: the upstream's answer as JSON text,
// or why there is none (kUnavailable). Never throws.
[[nodiscard]] cachekit::Result<std::string> load_httpbin_result(const HelloContext& hello);

// /store/products/...
void add_store_routes(cachekit::server::Router& router, App& app);
// / : the page listing the endpoints.
void add_index_route(cachekit::server::Router& router, App& app);

}  // namespace storefront
