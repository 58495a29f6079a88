// The PostgreSQL engine of the SQL cache backend: the dialect, connection settings and the
// factory. Connections themselves are in postgres_connection.cc.
//
// Values are BYTEA and all parameters and results travel in libpq's binary format, so a value
// is sent and received as its raw bytes (the text format would hex-encode every byte of it).
// Keys are TEXT COLLATE "C": comparisons are bytewise, whatever the database's locale, which
// makes keys(pattern)'s prefix range scan use the primary-key index and match the other
// backends' ordering. incr cannot register a function as SQLite does (that would need DDL in
// the application's database), so its guard is an expression: a regular expression decides
// "decimal integer" (parse_decimal's rule: optional '-', digits) inside a CASE — PostgreSQL
// does not promise the evaluation order of AND, and the cast must never see a non-number —
// and numeric bounds rule out overflow before the sum is cast back.
#include <fmt/format.h>
#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <string>

#include "backends/sql/engine.h"
#include "backends/sql/postgres_connection.h"
#include "backends/sql/sql_backend.h"
#include "cachekit/backends/sql.h"

namespace cachekit::sql_internal {
namespace {

// PostgreSQL truncates longer identifiers (NAMEDATALEN - 1), which would make two long table
// names collide.
constexpr std::size_t kMaxIdentifierBytes = 63;

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

// "postgresql://user@host:port/dbname" from whatever libpq accepts, never with the password.
Result<std::string> describe(const std::string& url) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(PQconninfoParse(url.c_str(), &error));
  if (!options) {
    std::string message = error != nullptr ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return invalid_argument_error("postgres: bad connection URL: " + message);
  }
  std::string user, host, port, dbname;
  for (auto* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    const std::string_view keyword = o->keyword;
    if (keyword == "user") user = o->val;
    if (keyword == "host" || (keyword == "hostaddr" && host.empty())) host = o->val;
    if (keyword == "port") port = o->val;
    if (keyword == "dbname") dbname = o->val;
  }
  return fmt::format("postgresql://{}{}{}{}/{}", user, user.empty() ? "" : "@",
                     host.empty() ? "localhost" : host, port.empty() ? "" : ":" + port, dbname);
}

class PostgresEngine final : public Engine {
 public:
  PostgresEngine(const PostgresOptions& options, std::string location)
      : url_(options.url),
        location_(std::move(location)),
        table_(options.table),
        timeout_(options.call_timeout),
        connect_timeout_(std::min(options.connect_timeout, options.call_timeout)) {
    dialect_.placeholder = '$';
    dialect_.key_type = "TEXT COLLATE \"C\"";
    dialect_.value_type = "BYTEA";
    dialect_.int_type = "BIGINT";
    dialect_.incr_value = "convert_to((encode(value, 'escape')::numeric + $2)::text, 'UTF8')";
    dialect_.incr_guard =
        "(CASE WHEN length(value) <= 1000 AND encode(value, 'escape') ~ '^-?[0-9]+$' "
        "THEN encode(value, 'escape')::numeric END) BETWEEN $4 AND $5";
    dialect_.create_table_prefix = options.unlogged ? "CREATE UNLOGGED TABLE" : "CREATE TABLE";
  }
  [[nodiscard]] std::string_view name() const override { return "postgres"; }
  [[nodiscard]] const Dialect& dialect() const override { return dialect_; }
  [[nodiscard]] const std::string& location() const override { return location_; }
  [[nodiscard]] std::pair<std::string, std::string> table_exists_query(
      std::string_view table) const override {
    return {"SELECT 1 WHERE to_regclass($1) IS NOT NULL", quote_identifier(table)};
  }
  Result<std::unique_ptr<Connection>> connect(Deadline deadline) override {
    return PostgresConnection::open(url_, location_, table_, timeout_,
                                    std::min(deadline, SteadyClock::now() + connect_timeout_));
  }

 private:
  std::string url_;
  std::string location_;
  std::string table_;
  std::chrono::milliseconds timeout_;
  std::chrono::milliseconds connect_timeout_;
  Dialect dialect_;
};

}  // namespace
}  // namespace cachekit::sql_internal

namespace cachekit {

Result<std::shared_ptr<Backend>> make_postgres_backend(const PostgresOptions& options) {
  if (options.url.empty()) return invalid_argument_error("postgres: the connection URL is empty");
  auto location = sql_internal::describe(options.url);
  if (!location.ok()) return location.status();
  if (options.table.empty() || options.table.size() > sql_internal::kMaxIdentifierBytes ||
      options.table.find('\0') != std::string::npos) {
    return invalid_argument_error(
        "postgres: the table name must be 1 to 63 bytes long, without NUL bytes");
  }
  if (options.pool_size == 0) {
    return invalid_argument_error("postgres: pool_size must be at least 1");
  }
  if (options.down_after_failures == 0) {
    return invalid_argument_error("postgres: down_after_failures must be at least 1");
  }
  sql_internal::SqlSettings settings{
      options.table,        options.max_entries,         options.cull_frequency,
      options.call_timeout, options.pool_size,           options.clock,
      options.clear_prefix, options.down_after_failures, options.retry_after};
  return std::shared_ptr<Backend>(std::make_shared<sql_internal::SqlBackend>(
      std::make_unique<sql_internal::PostgresEngine>(options, std::move(*location)),
      std::move(settings)));
}

}  // namespace cachekit
