// The storefront's front page: every endpoint, what it shows, and a link to try it.
#include <fmt/format.h>

#include <array>
#include <string>

#include "cachekit/redact.h"
#include "views.h"

namespace storefront {
namespace {

namespace http = cachekit::http;

struct Endpoint {
  const char* method;
  const char* path;
  const char* what;
};

constexpr std::array kEndpoints = {
    Endpoint{"GET", "/playground/hello/nocache/",
             "Step 1: no caching — calls the slow API on every request (the baseline)"},
    Endpoint{"GET", "/playground/hello/lowlevel/",
             "Step 2: the low-level API — cache.get, call the API on a miss, cache.set"},
    Endpoint{"GET", "/playground/hello/function/", "Step 3: cache_page on a function handler"},
    Endpoint{"GET", "/playground/hello/class/", "Step 4: cache_page on a class-based view's get()"},
    Endpoint{"GET", "/playground/hello/", "The lesson's URL: the cache_page function version"},
    Endpoint{"GET", "/store/products/?collection=3&sort=revenue",
             "Product report (collection, orders, revenue), cached with the low-level API"},
    Endpoint{"GET", "/store/products/uncached/?collection=3&sort=revenue",
             "The same report straight from the database"},
    Endpoint{"GET", "/store/products/1/", "One product with its sales, cached"},
    Endpoint{"POST", "/store/products/",
             "Create a product (JSON: title, unit_price, collection_id, inventory); expires the "
             "cached reports"},
    Endpoint{"PATCH", "/store/products/1/",
             "Change a product (any of those fields); expires its entry and the reports"},
    Endpoint{"GET", "/metrics", "Prometheus metrics: requests, page-cache hits and misses"},
};

std::string index_page(const App& app) {
  std::string rows;
  for (const auto& e : kEndpoints) {
    const std::string path = http::html_escape(e.path);
    rows += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n", e.method,
                        std::string_view(e.method) == "GET"
                            ? fmt::format("<a href=\"{}\"><code>{}</code></a>", path, path)
                            : fmt::format("<code>{}</code>", path),
                        http::html_escape(e.what));
  }
  return fmt::format(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>cachekit storefront</title></head><body style=\"font-family: system-ui, "
      "sans-serif; max-width: 60rem; margin: 2rem auto\">"
      "<h1>cachekit storefront</h1><p>The caching lesson, one endpoint per step. Cache: "
      "<code>{}</code>; upstream: <code>{}</code> (each hello call waits {} s).</p>"
      "<table cellpadding=\"4\"><tr><th>Method</th><th>Path</th><th>What it shows</th></tr>\n"
      "{}</table></body></html>",
      http::html_escape(app.cache.backend_info().name),
      http::html_escape(cachekit::redact(app.settings.upstream)), app.settings.upstream_delay,
      rows);
}

}  // namespace

void add_index_route(cachekit::server::Router& router, App& app) {
  router.get("/", [&app](http::Request&) { return http::Response::html(index_page(app)); });
}

}  // namespace storefront
