#include "store.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

namespace storefront {
namespace {

constexpr std::int64_t kPageSize = 20;

struct DbCloser {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw std::runtime_error(fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db)));
}

void exec(sqlite3* db, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "unknown error";
    sqlite3_free(message);
    throw std::runtime_error(fmt::format("sqlite: {}", text));
  }
}

// A prepared statement with positional binds (1-based, as SQLite counts).
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) !=
        SQLITE_OK) {
      fail(db, "prepare");
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(
        sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind_null(int i) { return check(sqlite3_bind_null(stmt_, i)); }
  // True while there is a row; false when done.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "step");
  }
  void run() {
    while (step()) {
    }
    sqlite3_reset(stmt_);
  }
  [[nodiscard]] std::int64_t integer(int col) const { return sqlite3_column_int64(stmt_, col); }
  [[nodiscard]] double real(int col) const { return sqlite3_column_double(stmt_, col); }
  [[nodiscard]] std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p != nullptr ? std::string(reinterpret_cast<const char*>(p)) : std::string();
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) fail(db_, "bind");
    return *this;
  }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

Db open(const std::filesystem::path& file) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(file.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);
  if (rc != SQLITE_OK) {
    throw std::runtime_error(fmt::format("sqlite: cannot open {}: {}", file.string(),
                                         raw != nullptr ? sqlite3_errmsg(raw) : "out of memory"));
  }
  // A writer waits for another writer instead of failing at once.
  sqlite3_busy_timeout(db.get(), 5000);
  exec(db.get(), "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;");
  return db;
}

// This thread's connection to `file`. SQLite connections are cheap to keep and must not be used
// by two threads at once; the server's handler threads are long-lived, so one each is enough.
sqlite3* connection(const std::filesystem::path& file) {
  thread_local std::filesystem::path open_file;
  thread_local Db db;
  if (!db || open_file != file) {
    db = open(file);
    open_file = file;
  }
  return db.get();
}

constexpr const char* kSchema = R"sql(
CREATE TABLE collections (id INTEGER PRIMARY KEY, title TEXT NOT NULL);
CREATE TABLE products (
  id INTEGER PRIMARY KEY, title TEXT NOT NULL, unit_price REAL NOT NULL,
  inventory INTEGER NOT NULL, collection_id INTEGER NOT NULL REFERENCES collections(id),
  last_update TEXT NOT NULL DEFAULT (datetime('now')));
CREATE TABLE customers (id INTEGER PRIMARY KEY, first_name TEXT NOT NULL, last_name TEXT NOT NULL,
  membership TEXT NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, placed_at TEXT NOT NULL, payment_status TEXT NOT NULL,
  customer_id INTEGER NOT NULL REFERENCES customers(id));
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
  product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
  unit_price REAL NOT NULL);
CREATE INDEX order_items_product ON order_items(product_id);
CREATE INDEX products_collection ON products(collection_id);
)sql";

// Deterministic data (a fixed seed), so every first start builds the same store.
void seed(sqlite3* db, std::int64_t product_count, std::int64_t order_count) {
  static constexpr std::array<const char*, 10> kCollections = {
      "Flowers", "Grocery", "Beauty", "Cleaning", "Stationary",
      "Pets",    "Baking",  "Spices", "Toys",     "Magazines"};
  static constexpr std::array<const char*, 8> kWords = {"Organic", "Classic", "Deluxe",  "Mini",
                                                        "Family",  "Fresh",   "Crunchy", "Smooth"};
  static constexpr std::array<const char*, 3> kStatus = {"C", "P", "F"};
  std::mt19937_64 random(20240601);
  auto between = [&](std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(random);
  };
  exec(db, "BEGIN");
  exec(db, kSchema);
  {
    Statement insert(db, "INSERT INTO collections(id, title) VALUES (?1, ?2)");
    for (std::size_t i = 0; i < kCollections.size(); ++i) {
      insert.bind(1, static_cast<std::int64_t>(i + 1)).bind(2, std::string(kCollections[i])).run();
    }
  }
  std::vector<double> prices(static_cast<std::size_t>(product_count) + 1);
  {
    Statement insert(db,
                     "INSERT INTO products(id, title, unit_price, inventory, collection_id) "
                     "VALUES (?1, ?2, ?3, ?4, ?5)");
    for (std::int64_t id = 1; id <= product_count; ++id) {
      const auto collection = between(1, kCollections.size());
      prices[id] = static_cast<double>(between(100, 10'000)) / 100.0;
      insert.bind(1, id)
          .bind(2, fmt::format("{} {} #{}", kWords[between(0, kWords.size() - 1)],
                               kCollections[collection - 1], id))
          .bind(3, prices[id])
          .bind(4, between(0, 100))
          .bind(5, collection)
          .run();
    }
  }
  const std::int64_t customer_count = std::max<std::int64_t>(1, order_count / 6);
  {
    Statement insert(db,
                     "INSERT INTO customers(id, first_name, last_name, membership) "
                     "VALUES (?1, ?2, ?3, ?4)");
    for (std::int64_t id = 1; id <= customer_count; ++id) {
      insert.bind(1, id)
          .bind(2, fmt::format("First{}", id))
          .bind(3, fmt::format("Last{}", id))
          .bind(4, std::string(id % 10 == 0 ? "G" : (id % 3 == 0 ? "S" : "B")))
          .run();
    }
  }
  {
    Statement order(db,
                    "INSERT INTO orders(id, placed_at, payment_status, customer_id) VALUES "
                    "(?1, datetime('now', ?2), ?3, ?4)");
    Statement item(db,
                   "INSERT INTO order_items(order_id, product_id, quantity, unit_price) "
                   "VALUES (?1, ?2, ?3, ?4)");
    for (std::int64_t id = 1; id <= order_count; ++id) {
      order.bind(1, id)
          .bind(2, fmt::format("-{} minutes", between(0, 2 * 365 * 24 * 60)))
          .bind(3, std::string(kStatus[between(0, 2)]))
          .bind(4, between(1, customer_count))
          .run();
      for (auto n = between(1, 7); n > 0; --n) {
        const auto product = between(1, product_count);
        item.bind(1, id).bind(2, product).bind(3, between(1, 10)).bind(4, prices[product]).run();
      }
    }
  }
  exec(db, "COMMIT");
}

nlohmann::json product_row(const Statement& row) {
  return {{"id", row.integer(0)},         {"title", row.text(1)},
          {"unit_price", row.real(2)},    {"inventory", row.integer(3)},
          {"collection", row.text(4)},    {"orders_count", row.integer(5)},
          {"units_sold", row.integer(6)}, {"revenue", std::round(row.real(7) * 100) / 100},
          {"last_update", row.text(8)}};
}

// Revenue and orders per product over paid and pending orders of the last year: a join over
// every order line, grouped and sorted — the kind of query worth caching.
constexpr const char* kReportSelect = R"sql(
SELECT p.id, p.title, p.unit_price, p.inventory, c.title,
       COUNT(DISTINCT o.id), COALESCE(SUM(oi.quantity), 0),
       COALESCE(SUM(oi.quantity * oi.unit_price), 0), p.last_update
FROM products p
JOIN collections c ON c.id = p.collection_id
LEFT JOIN order_items oi ON oi.product_id = p.id
LEFT JOIN orders o ON o.id = oi.order_id AND o.payment_status <> 'F'
                  AND o.placed_at >= datetime('now', '-365 days')
)sql";

}  // namespace

std::string ProductQuery::key() const {
  return fmt::format("c={};min={:.2f};sort={};page={}",
                     collection_id ? std::to_string(*collection_id) : "all", min_price, sort, page);
}

Store::Store(std::filesystem::path file, std::int64_t seed_products, std::int64_t seed_orders)
    : file_(std::move(file)) {
  sqlite3* db = connection(file_);
  Statement tables(db, "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='products'");
  tables.step();
  if (tables.integer(0) == 0) {
    const auto start = std::chrono::steady_clock::now();
    seed(db, seed_products, seed_orders);
    seeded_now_ = true;
    std::fprintf(stderr, "storefront: seeded %s with %lld products and %lld orders in %lld ms\n",
                 file_.c_str(), static_cast<long long>(seed_products),
                 static_cast<long long>(seed_orders),
                 static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::steady_clock::now() - start)
                                            .count()));
  }
}

nlohmann::json Store::products(const ProductQuery& query) const {
  sqlite3* db = connection(file_);
  // The ORDER BY column comes from a fixed list, never from the request text.
  const char* order = "8 DESC, p.id";
  if (query.sort == "orders") order = "6 DESC, p.id";
  if (query.sort == "price") order = "p.unit_price, p.id";
  if (query.sort == "title") order = "p.title, p.id";
  Statement select(db,
                   fmt::format("{} WHERE (?1 IS NULL OR p.collection_id = ?1) AND "
                               "p.unit_price >= ?2 GROUP BY p.id ORDER BY {} LIMIT ?3 OFFSET ?4",
                               kReportSelect, order));
  if (query.collection_id) {
    select.bind(1, *query.collection_id);
  } else {
    select.bind_null(1);
  }
  select.bind(2, query.min_price).bind(3, kPageSize).bind(4, (query.page - 1) * kPageSize);
  nlohmann::json results = nlohmann::json::array();
  while (select.step()) results.push_back(product_row(select));
  return {{"page", query.page}, {"count", results.size()}, {"results", std::move(results)}};
}

std::optional<nlohmann::json> Store::product(std::int64_t id) const {
  Statement select(connection(file_),
                   fmt::format("{} WHERE p.id = ?1 GROUP BY p.id", kReportSelect));
  select.bind(1, id);
  if (!select.step()) return std::nullopt;
  return product_row(select);
}

std::int64_t Store::create_product(const ProductChange& change) {
  if (!change.title || change.title->empty()) throw std::invalid_argument("title is required");
  if (!change.unit_price) throw std::invalid_argument("unit_price is required");
  if (!change.collection_id) throw std::invalid_argument("collection_id is required");
  sqlite3* db = connection(file_);
  Statement exists(db, "SELECT 1 FROM collections WHERE id = ?1");
  exists.bind(1, *change.collection_id);
  if (!exists.step()) throw std::invalid_argument("no such collection_id");
  Statement insert(db,
                   "INSERT INTO products(title, unit_price, inventory, collection_id) "
                   "VALUES (?1, ?2, ?3, ?4)");
  insert.bind(1, *change.title)
      .bind(2, *change.unit_price)
      .bind(3, change.inventory.value_or(0))
      .bind(4, *change.collection_id)
      .run();
  return sqlite3_last_insert_rowid(db);
}

bool Store::update_product(std::int64_t id, const ProductChange& change) {
  sqlite3* db = connection(file_);
  if (change.collection_id) {
    Statement exists(db, "SELECT 1 FROM collections WHERE id = ?1");
    exists.bind(1, *change.collection_id);
    if (!exists.step()) throw std::invalid_argument("no such collection_id");
  }
  if (change.title && change.title->empty()) throw std::invalid_argument("title is empty");
  // COALESCE keeps the fields the change leaves out.
  Statement update(db,
                   "UPDATE products SET title = COALESCE(?2, title), "
                   "unit_price = COALESCE(?3, unit_price), inventory = COALESCE(?4, inventory), "
                   "collection_id = COALESCE(?5, collection_id), last_update = datetime('now') "
                   "WHERE id = ?1");
  update.bind(1, id);
  change.title ? update.bind(2, *change.title) : update.bind_null(2);
  change.unit_price ? update.bind(3, *change.unit_price) : update.bind_null(3);
  change.inventory ? update.bind(4, *change.inventory) : update.bind_null(4);
  change.collection_id ? update.bind(5, *change.collection_id) : update.bind_null(5);
  update.run();
  return sqlite3_changes(db) > 0;
}

}  // namespace storefront
