#pragma once
// Store: the storefront's product database — SQLite, seeded on first start with enough orders
// that the product report below is a genuinely expensive query (tens of milliseconds).
//
// Schema (the lesson's storefront): collections, products, customers, orders, order_items.
//
// Thread-safety: every method may be called from any thread. Each thread opens its own SQLite
// connection to the file (WAL mode), so readers never wait for each other and a writer waits for
// no reader.

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace storefront {

// One product listing request: filters, order and page, as normalised query parameters.
struct ProductQuery {
  std::optional<std::int64_t> collection_id;
  double min_price = 0;
  std::string sort = "revenue";  // revenue | orders | price | title
  std::int64_t page = 1;         // 20 products a page

  // A stable text form for cache keys: "c=3;min=10.00;sort=revenue;page=1".
  [[nodiscard]] std::string key() const;
};

struct ProductChange {
  std::optional<std::string> title;
  std::optional<double> unit_price;
  std::optional<std::int64_t> inventory;
  std::optional<std::int64_t> collection_id;
};

class Store {
 public:
  // Opens (creating and seeding when it has no tables yet) the database at `file`. Throws
  // std::runtime_error when the file cannot be opened or seeded.
  Store(std::filesystem::path file, std::int64_t seed_products, std::int64_t seed_orders);

  // The report: products with their collection, number of orders and revenue, filtered and
  // sorted. {"count": N, "page": P, "results": [...]}. Throws std::runtime_error on a
  // database error.
  [[nodiscard]] nlohmann::json products(const ProductQuery& query) const;
  // One product with its order count and revenue, or nullopt. Throws on a database error.
  [[nodiscard]] std::optional<nlohmann::json> product(std::int64_t id) const;
  // Creates a product; returns its id. Throws std::invalid_argument for a bad value (missing
  // title, unknown collection) and std::runtime_error on a database error.
  std::int64_t create_product(const ProductChange& change);
  // Changes a product; false when there is no such product. Throws as create_product.
  bool update_product(std::int64_t id, const ProductChange& change);

  [[nodiscard]] bool seeded_now() const noexcept { return seeded_now_; }
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }

 private:
  std::filesystem::path file_;
  bool seeded_now_ = false;
};

}  // namespace storefront
