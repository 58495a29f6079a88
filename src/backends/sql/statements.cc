#include "backends/sql/statements.h"

#include <fmt/format.h>

namespace cachekit::sql_internal {

namespace {

constexpr std::string_view kLive = "(expires IS NULL OR expires > {now})";

std::string live(const Dialect& d, int now) {
  return fmt::format(fmt::runtime(kLive), fmt::arg("now", d.p(now)));
}

std::string placeholders(const Dialect& d, int first, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ',';
    out += d.p(first + static_cast<int>(i));
  }
  return out;
}

// The upsert both set and set_many end with; `excluded` is the row that was proposed.
constexpr std::string_view kOverwrite =
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires = excluded.expires, "
    "written = excluded.written";

}  // namespace

// One entry per statement, in StatementId order: a table more than a function, hence its length.
Statements build_statements(const Dialect& d, std::string_view table) {
  const std::string t = quote_identifier(table);
  auto p = [&](int n) { return d.p(n); };
  Statements s;
  auto define = [&](StatementId id, std::string sql, bool writes, bool idempotent = true) {
    s[id] = Statement{id, std::move(sql), writes, idempotent, id == kGet || id == kExpiry};
  };
  define(kGet, fmt::format("SELECT value, expires FROM {} WHERE key = {}", t, p(1)), false);
  define(kSet,
         fmt::format("INSERT INTO {} (key, value, expires, written) VALUES ({}, {}, {}, {}){}", t,
                     p(1), p(2), p(3), p(4), kOverwrite),
         true);
  // The existing row is replaced only when it has expired; a live one makes the INSERT affect
  // no row. Being one statement, it is atomic against every other writer in any process.
  define(kAdd,
         fmt::format("INSERT INTO {} AS c (key, value, expires, written) VALUES ({}, {}, {}, {}){}"
                     " WHERE c.expires IS NOT NULL AND c.expires <= {}",
                     t, p(1), p(2), p(3), p(4), kOverwrite, p(4)),
         true, false);
  define(kTouch,
         fmt::format("UPDATE {} SET expires = {}, written = {} WHERE key = {} AND {}", t, p(2),
                     p(3), p(1), live(d, 3)),
         true);
  define(kErase, fmt::format("DELETE FROM {} WHERE key = {} RETURNING expires", t, p(1)), true);
  // Compare-and-delete in one statement: atomic against every other writer in any process.
  define(
      kEraseIfValue,
      fmt::format("DELETE FROM {} WHERE key = {} AND value = {} RETURNING expires", t, p(1), p(2)),
      true, false);
  define(kIncr,
         fmt::format("UPDATE {} SET value = {}, written = {} WHERE key = {} AND {} AND {} "
                     "RETURNING value",
                     t, d.incr_value, p(3), p(1), live(d, 3), d.incr_guard),
         true, false);
  define(kExpiry, fmt::format("SELECT expires FROM {} WHERE key = {}", t, p(1)), false);
  define(kDeleteIfExpired,
         fmt::format("DELETE FROM {} WHERE key = {} AND expires <= {}", t, p(1), p(2)), true);
  define(kClear, fmt::format("DELETE FROM {}", t), true);
  define(kCount, fmt::format("SELECT COUNT(*) FROM {}", t), false);
  define(kDeleteExpired,
         fmt::format("DELETE FROM {0} WHERE key IN (SELECT key FROM {0} WHERE expires <= {1} "
                     "ORDER BY expires LIMIT {2})",
                     t, p(1), p(2)),
         true);
  define(kCullExpiring,
         fmt::format("DELETE FROM {0} WHERE key IN (SELECT key FROM {0} WHERE expires IS NOT NULL "
                     "ORDER BY expires, written LIMIT {1})",
                     t, p(1)),
         true);
  define(kCullNever,
         fmt::format("DELETE FROM {0} WHERE key IN (SELECT key FROM {0} WHERE expires IS NULL "
                     "ORDER BY written LIMIT {1})",
                     t, p(1)),
         true);
  define(kStats,
         fmt::format("SELECT COUNT(*), COALESCE(SUM(CASE WHEN expires <= {} THEN 1 ELSE 0 END), 0) "
                     "FROM {}",
                     p(1), t),
         false);
  return s;
}

Statement get_many_statement(const Dialect& d, std::string_view table, std::size_t n) {
  return {-1,
          fmt::format("SELECT key, value, expires FROM {} WHERE key IN ({})",
                      quote_identifier(table), placeholders(d, 1, n)),
          false, true};
}

Statement erase_many_statement(const Dialect& d, std::string_view table, std::size_t n) {
  return {-1,
          fmt::format("DELETE FROM {} WHERE key IN ({}) RETURNING expires", quote_identifier(table),
                      placeholders(d, 1, n)),
          true, true};
}

Statement set_many_statement(const Dialect& d, std::string_view table, std::size_t n) {
  std::string rows;
  for (std::size_t i = 0; i < n; ++i) {
    const int key = 3 + 2 * static_cast<int>(i);
    rows += fmt::format("{}({}, {}, {}, {})", i == 0 ? "" : ", ", d.p(key), d.p(key + 1), d.p(1),
                        d.p(2));
  }
  return {-1,
          fmt::format("INSERT INTO {} (key, value, expires, written) VALUES {}{}",
                      quote_identifier(table), rows, kOverwrite),
          true, true};
}

Statement keys_statement(const Dialect& d, std::string_view table, bool bounded) {
  return {-1,
          fmt::format("SELECT key FROM {} WHERE key >= {}{} AND {}", quote_identifier(table),
                      d.p(1), bounded ? " AND key < " + d.p(3) : "", live(d, 2)),
          false, true};
}

// The range (key >= prefix, below the bound) lets both engines use the primary-key index; the
// substr() comparison is the exact test, so no LIKE metacharacter or case folding can widen it.
Statement clear_prefix_statement(const Dialect& d, std::string_view table, bool bounded) {
  return {
      -1,
      fmt::format("DELETE FROM {} WHERE key >= {}{} AND substr(key, 1, CAST({} AS INTEGER)) = {}",
                  quote_identifier(table), d.p(1), bounded ? " AND key < " + d.p(3) : "", d.p(2),
                  d.p(1)),
      true, true, false};
}

std::string create_table_sql(const Dialect& d, std::string_view table) {
  return fmt::format(
      "{} IF NOT EXISTS {} (\n"
      "    key {} NOT NULL PRIMARY KEY,\n"
      "    value {} NOT NULL,\n"
      "    expires {},\n"
      "    written {} NOT NULL\n"
      ");\n"
      "CREATE INDEX IF NOT EXISTS {} ON {} (expires);\n",
      d.create_table_prefix, quote_identifier(table), d.key_type, d.value_type, d.int_type,
      d.int_type, quote_identifier(std::string(table) + "_expires"), quote_identifier(table));
}

}  // namespace cachekit::sql_internal
