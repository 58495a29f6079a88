// The SQL backend's table-wide work: keeping the table within max_entries, removing expired
// rows, listing keys, statistics and creating the table.
//
// Counting. Django runs SELECT COUNT(*) before every write — a full scan of the table (or of an
// index) in both engines, so a write costs O(entries). Here the table is counted only when it
// might have reached max_entries: after a count of C, the next count comes after
// (max_entries - C) / 2 more writes (at least 1), so the count is repeated every write only
// when the table is within a write of full, and rarely while it has room. Overwrites are
// counted as writes too, which only makes the check earlier. The bound is exact within one
// process; several processes writing one table can overshoot it by what they write between
// their counts (each keeps its own bookkeeping), and culling then brings it back.
//
// Culling. When a count finds the table full: expired rows are deleted first, in batches of
// at most kCleanupBatch rows; if that is not enough, 1/cull_frequency of the rows (and at
// least enough to make room for the incoming rows) are deleted, those closest to expiry first,
// never-expiring ones last, ties broken by the oldest write. That order is what the expires
// index already provides, and unlike LRU it needs no write on a read. Each count also deletes
// one batch of expired rows even when the table has room, so expired rows do not accumulate.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <limits>

#include "backends/sql/sql_backend.h"

namespace cachekit::sql_internal {

void SqlBackend::before_insert(std::int64_t rows) {
  if (settings_.max_entries == 0) return;
  const std::int64_t pending = writes_since_count_.fetch_add(rows) + rows;
  if (pending < writes_before_count_.load(std::memory_order_relaxed)) return;
  // One thread counts; the others go on writing rather than queue behind a full-table count.
  std::unique_lock lock(size_check_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  auto count = count_rows();
  if (!count.ok()) return;  // the write itself reports a database problem
  const auto max = static_cast<std::int64_t>(settings_.max_entries);
  std::int64_t after = *count;
  if (after + rows > max) {
    auto shrunk = shrink(after, rows);
    if (!shrunk.ok()) return;
    after = *shrunk;
  } else {
    const Param params[] = {Param::integer(now_ms()), Param::integer(kCleanupBatch)};
    after -= delete_batches(kDeleteExpired, params, kCleanupBatch).value_or(0);
  }
  writes_since_count_.store(0);
  writes_before_count_.store(std::max<std::int64_t>(1, (max - after - rows) / 2));
}

Result<std::int64_t> SqlBackend::count_rows() {
  std::int64_t count = 0;
  auto on_row = [&](const Row& row) { count = row.integer(0); };
  if (Status s = run(statements_[kCount], {}, RowFn(on_row)); !s.ok()) return s;
  return count;
}

// Runs a deleting statement whose last parameter is its batch size until `wanted` rows are
// gone or a batch comes back short; returns how many rows went.
Result<std::int64_t> SqlBackend::delete_batches(StatementId id, std::span<const Param> params,
                                                std::int64_t wanted) {
  std::vector<Param> bound(params.begin(), params.end());
  std::int64_t deleted = 0;
  while (deleted < wanted) {
    const std::int64_t batch = std::min(kCleanupBatch, wanted - deleted);
    bound.back() = Param::integer(batch);
    std::int64_t affected = 0;
    if (Status s = run(statements_[id], bound, {}, &affected); !s.ok()) return s;
    deleted += affected;
    if (affected < batch) break;
  }
  return deleted;
}

// Makes room for `incoming` rows in a table of `count` rows; returns the rows left.
Result<std::int64_t> SqlBackend::shrink(std::int64_t count, std::int64_t incoming) {
  const auto max = static_cast<std::int64_t>(settings_.max_entries);
  const Param expired[] = {Param::integer(now_ms()), Param::integer(0)};
  auto gone = delete_batches(kDeleteExpired, expired, std::numeric_limits<std::int64_t>::max());
  if (!gone.ok()) return gone.status();
  count -= *gone;
  if (count + incoming <= max) return count;
  if (settings_.cull_frequency == 0) {
    if (Status s = clear(); !s.ok()) return s;
    return 0;
  }
  const std::int64_t wanted = std::max(count / settings_.cull_frequency, count + incoming - max);
  const Param limit[] = {Param::integer(0)};
  auto culled = delete_batches(kCullExpiring, limit, wanted);
  if (!culled.ok()) return culled.status();
  if (*culled < wanted) {
    auto more = delete_batches(kCullNever, limit, wanted - *culled);
    if (!more.ok()) return more.status();
    *culled += *more;
  }
  return count - *culled;
}

namespace {

// The literal text every key matching a glob `pattern` starts with, cut to its ASCII part so
// that the range bound below stays valid UTF-8 (PostgreSQL refuses invalid text parameters).
std::string literal_prefix(std::string_view pattern) {
  std::string prefix;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '*' || c == '?' || c == '[') break;
    if (c == '\\') {
      if (i + 1 == pattern.size()) break;
      c = pattern[++i];
    }
    if (static_cast<unsigned char>(c) >= 0x7f) break;
    prefix += c;
  }
  return prefix;
}

// The smallest string greater than every string starting with `prefix` (for key < bound), or
// "" when there is none. `prefix` is ASCII below 0x7f, so incrementing its last byte works.
std::string prefix_bound(std::string prefix) {
  if (prefix.empty()) return {};
  prefix.back() = static_cast<char>(prefix.back() + 1);
  return prefix;
}

}  // namespace

// Deletes the rows whose key starts with `prefix`. The upper bound comes from the prefix's
// ASCII head (a bound made by bumping a UTF-8 byte may not be valid text, which PostgreSQL
// refuses); substr() over the whole prefix, counted in characters as both engines count
// them, makes the match exact.
Status SqlBackend::clear_prefix(std::string_view prefix) {
  const std::string upper = prefix_bound(literal_prefix(escape_glob(prefix)));
  const auto characters = std::count_if(prefix.begin(), prefix.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  });
  std::vector<Param> params{Param::text(prefix), Param::integer(characters)};
  if (!upper.empty()) params.push_back(Param::text(upper));
  const Statement statement =
      clear_prefix_statement(engine_->dialect(), settings_.table, !upper.empty());
  return run(statement, params);
}

// The glob's literal prefix becomes an index range scan (both engines compare keys bytewise);
// the rest of the glob is matched here with glob_match, exactly as the other backends match
// it, instead of being translated to LIKE or GLOB with their different escaping rules.
Result<std::vector<std::string>> SqlBackend::keys(std::string_view pattern) {
  const std::string lower = literal_prefix(pattern);
  const std::string upper = prefix_bound(lower);
  std::vector<Param> params{Param::text(lower), Param::integer(now_ms())};
  if (!upper.empty()) params.push_back(Param::text(upper));
  std::vector<std::string> out;
  auto on_row = [&](const Row& row) {
    const std::string_view key = row.bytes(0);
    if (glob_match(pattern, key)) out.emplace_back(key);
  };
  const Statement statement = keys_statement(engine_->dialect(), settings_.table, !upper.empty());
  if (Status s = run(statement, params, RowFn(on_row)); !s.ok()) return s;
  return out;
}

Result<StatPairs> SqlBackend::stats() {
  std::int64_t rows = 0;
  std::int64_t expired = 0;
  auto on_row = [&](const Row& row) {
    rows = row.integer(0);
    expired = row.integer(1);
  };
  const Param params[] = {Param::integer(now_ms())};
  if (Status s = run(statements_[kStats], params, RowFn(on_row)); !s.ok()) return s;
  return StatPairs{
      {"engine", std::string(engine_->name())},
      {"location", engine_->location()},
      {"table", settings_.table},
      {"entries", std::to_string(rows - expired)},
      {"expired_entries", std::to_string(expired)},
      {"max_entries", std::to_string(settings_.max_entries)},
      {"cull_frequency", std::to_string(settings_.cull_frequency)},
      {"open_connections", std::to_string(pool_.open_connections())},
      {"max_connections", std::to_string(pool_.max_connections())},
  };
}

Result<CacheTableReport> SqlBackend::create_table(bool dry_run) {
  CacheTableReport report{settings_.table, false,
                          create_table_sql(engine_->dialect(), settings_.table)};
  if (dry_run && !engine_->storage_exists()) return report;
  const Deadline deadline = SteadyClock::now() + settings_.timeout;
  auto lease = pool_.acquire(deadline);
  if (!lease.ok()) return lease.status();
  auto [sql, name] = engine_->table_exists_query(settings_.table);
  const Param params[] = {Param::text(name)};
  auto on_row = [&](const Row&) { report.existed = true; };
  const Statement exists{-1, sql, false, true};
  if (Status s = (*lease)->execute(exists, params, RowFn(on_row), nullptr, deadline); !s.ok()) {
    return s;
  }
  if (report.existed || dry_run) return report;
  if (Status s = (*lease)->execute_script(report.sql, deadline); !s.ok()) return s;
  return report;
}

}  // namespace cachekit::sql_internal

namespace cachekit {

Result<CacheTableReport> create_cache_table(Backend& backend, bool dry_run) {
  auto* sql = dynamic_cast<sql_internal::SqlBackend*>(&backend);
  if (sql == nullptr) {
    return unimplemented_error("the " + backend.info().name + " backend has no database table");
  }
  return sql->create_table(dry_run);
}

}  // namespace cachekit
