// The store: a product report over the SQLite store, cached with the low-level API, and the
// writes that deliberately expire it.
//
//   GET   /store/products/?collection=3&min_price=10&sort=revenue&page=1   cached report
//   GET   /store/products/uncached/?...                                     the same, no cache
//   GET   /store/products/{id}/                                             one product, cached
//   POST  /store/products/        {"title", "unit_price", "collection_id", "inventory"}
//   PATCH /store/products/{id}/   (or PUT) any of those fields
//
// Invalidation. A product's own entry is erased when it changes. The report has one entry per
// filter/sort/page combination, too many to list, so its keys carry a generation number kept
// in the cache under "store:products:generation": a write increments it, and every report
// cached under the old number becomes unreachable at once (and expires on its own). If the
// generation entry is itself evicted, it is recreated from the clock in milliseconds — larger
// than any number handed out before, so an old report never comes back.
#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>

#include "views.h"

namespace storefront {
namespace {

namespace http = cachekit::http;

constexpr std::string_view kGenerationKey = "store:products:generation";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::int64_t report_generation(cachekit::Cache& cache) {
  if (auto generation = cache.get<std::int64_t>(kGenerationKey)) return *generation;
  cache.add(kGenerationKey, now_ms(), cachekit::kNever);
  return cache.get<std::int64_t>(kGenerationKey).value_or(0);
}

void expire_reports(cachekit::Cache& cache) {
  if (!cache.incr(kGenerationKey)) cache.set(kGenerationKey, now_ms(), cachekit::kNever);
}

std::string product_key(std::int64_t id) { return fmt::format("store:product:{}", id); }

http::Response bad_request(std::string message) {
  return http::Response::json({{"error", std::move(message)}}, 400);
}

// A JSON body already serialized (as stored in the cache): no parse and re-dump on a hit.
http::Response json_text(std::string_view body, std::string_view source, int status = 200) {
  http::Response response;
  response.status = status;
  response.headers.set("Content-Type", "application/json");
  response.headers.set("X-Data-Source", std::string(source));
  response.body = cachekit::Bytes(body);
  return response;
}

std::optional<std::int64_t> parse_integer(std::string_view text, std::int64_t min,
                                          std::int64_t max) {
  std::int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || value < min || value > max) {
    return std::nullopt;
  }
  return value;
}

std::optional<double> parse_number(const std::string& text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// The report's query parameters, or the message of a 400.
std::variant<ProductQuery, std::string> parse_query(const http::Request& request) {
  ProductQuery query;
  if (auto text = request.query_param("collection"); text && !text->empty()) {
    query.collection_id = parse_integer(*text, 1, 1'000'000);
    if (!query.collection_id) return "collection must be a positive integer";
  }
  if (auto text = request.query_param("min_price"); text && !text->empty()) {
    auto value = parse_number(*text);
    if (!value || *value < 0) return "min_price must be a non-negative number";
    query.min_price = std::round(*value * 100) / 100;
  }
  if (auto text = request.query_param("sort"); text && !text->empty()) {
    if (*text != "revenue" && *text != "orders" && *text != "price" && *text != "title") {
      return "sort must be one of revenue, orders, price, title";
    }
    query.sort = *text;
  }
  if (auto text = request.query_param("page"); text && !text->empty()) {
    auto page = parse_integer(*text, 1, 10'000);
    if (!page) return "page must be an integer between 1 and 10000";
    query.page = *page;
  }
  return query;
}

http::Response products_cached(App& app, http::Request& request) {
  auto parsed = parse_query(request);
  if (auto* message = std::get_if<std::string>(&parsed)) return bad_request(*message);
  const auto& query = std::get<ProductQuery>(parsed);
  const auto key = fmt::format("store:products:{}:{}", report_generation(app.cache), query.key());
  if (auto cached = app.cache.get(key)) return json_text(cached->view(), "cache");
  const std::string body = app.store.products(query).dump();
  app.cache.set(key, body, app.settings.store_timeout);
  return json_text(body, "database");
}

http::Response products_uncached(App& app, http::Request& request) {
  auto parsed = parse_query(request);
  if (auto* message = std::get_if<std::string>(&parsed)) return bad_request(*message);
  return json_text(app.store.products(std::get<ProductQuery>(parsed)).dump(), "database");
}

std::optional<std::int64_t> product_id(const http::Request& request) {
  return parse_integer(request.path_params.at("id"), 1, std::numeric_limits<std::int64_t>::max());
}

http::Response product_detail(App& app, http::Request& request) {
  auto id = product_id(request);
  if (!id) return http::Response::json({{"error", "no such product"}}, 404);
  const auto key = product_key(*id);
  if (auto cached = app.cache.get(key)) return json_text(cached->view(), "cache");
  auto product = app.store.product(*id);
  if (!product) return http::Response::json({{"error", "no such product"}}, 404);
  const std::string body = product->dump();
  app.cache.set(key, body, app.settings.store_timeout);
  return json_text(body, "database");
}

// The fields of a create/update body, or the message of a 400.
std::variant<ProductChange, std::string> parse_change(const http::Request& request) {
  auto body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) return "the body must be a JSON object";
  ProductChange change;
  for (const auto& [name, value] : body.items()) {
    if (name == "title" && value.is_string()) {
      change.title = value.get<std::string>();
    } else if (name == "unit_price" && value.is_number() && value.get<double>() >= 0) {
      change.unit_price = std::round(value.get<double>() * 100) / 100;
    } else if (name == "inventory" && value.is_number_integer() && value.get<std::int64_t>() >= 0) {
      change.inventory = value.get<std::int64_t>();
    } else if (name == "collection_id" && value.is_number_integer()) {
      change.collection_id = value.get<std::int64_t>();
    } else {
      return "unknown field or bad value: " + name +
             " (fields: title string, unit_price number >= 0, inventory integer >= 0, "
             "collection_id integer)";
    }
  }
  return change;
}

http::Response create_product(App& app, http::Request& request) {
  auto parsed = parse_change(request);
  if (auto* message = std::get_if<std::string>(&parsed)) return bad_request(*message);
  try {
    const auto id = app.store.create_product(std::get<ProductChange>(parsed));
    expire_reports(app.cache);
    auto product = app.store.product(id);
    return http::Response::json(product.value_or(nlohmann::json{{"id", id}}), 201);
  } catch (const std::invalid_argument& error) {
    return bad_request(error.what());
  }
}

http::Response update_product(App& app, http::Request& request) {
  auto id = product_id(request);
  if (!id) return http::Response::json({{"error", "no such product"}}, 404);
  auto parsed = parse_change(request);
  if (auto* message = std::get_if<std::string>(&parsed)) return bad_request(*message);
  try {
    if (!app.store.update_product(*id, std::get<ProductChange>(parsed))) {
      return http::Response::json({{"error", "no such product"}}, 404);
    }
  } catch (const std::invalid_argument& error) {
    return bad_request(error.what());
  }
  // Expire what this write made stale: the product's entry and every cached report.
  app.cache.erase(product_key(*id));
  expire_reports(app.cache);
  return http::Response::json(app.store.product(*id).value_or(nlohmann::json::object()));
}

}  // namespace

void add_store_routes(cachekit::server::Router& router, App& app) {
  router.get("/store/products/", [&app](http::Request& r) { return products_cached(app, r); });
  router.post("/store/products/", [&app](http::Request& r) { return create_product(app, r); });
  router.get("/store/products/uncached/",
             [&app](http::Request& r) { return products_uncached(app, r); });
  router.get("/store/products/{id}/", [&app](http::Request& r) { return product_detail(app, r); });
  router.route({"PATCH", "PUT"}, "/store/products/{id}/",
               [&app](http::Request& r) { return update_product(app, r); });
}

}  // namespace storefront
