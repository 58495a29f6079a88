#pragma once
// The storefront's endpoints: the playground (one per step of the caching lesson), the store
// (an expensive query cached with the low-level API, and writes that expire it) and the index
// page listing them all.

#include <string>

#include "cachekit/cache.h"
#include "cachekit/server/router.h"
#include "settings.h"
#include "store.h"
#include "upstream.h"

namespace storefront {

// What every handler needs. Outlives the server.
struct App {
  const Settings& settings;
  cachekit::Cache& cache;
  const UpstreamClient& upstream;
  Store& store;
  std::string hello_template;  // the text of templates/hello.html
};

// /playground/hello/... and the lesson's /playground/hello/.
void add_playground_routes(cachekit::server::Router& router, App& app);
// /store/products/...
void add_store_routes(cachekit::server::Router& router, App& app);
// / : the page listing the endpoints.
void add_index_route(cachekit::server::Router& router, App& app);

}  // namespace storefront
