#pragma once
// The storefront's endpoints: the playground (one per step of the caching lesson), the store
// (an expensive query cached with the low-level API, and writes that expire it) and the index
// page listing them all.

#include <nlohmann/json.hpp>
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
// One call of the upstream API the hello pages show: its JSON answer, or why there is none
// (kUnavailable). Never throws.
[[nodiscard]] cachekit::Result<nlohmann::json> fetch_hello_data(const HelloContext& hello);
// The lesson's /playground/hello/ page as its route's handler renders it from the upstream's
// answer `data` (what the low-level step stores under kHttpbinResultKey, as JSON text).
[[nodiscard]] cachekit::http::Response render_hello_page(const HelloContext& hello,
                                                         const nlohmann::json& data);

// /store/products/...
void add_store_routes(cachekit::server::Router& router, App& app);
// / : the page listing the endpoints.
void add_index_route(cachekit::server::Router& router, App& app);

}  // namespace storefront
