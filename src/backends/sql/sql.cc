// The per-key operations of the SQL backend, shared by SQLite and PostgreSQL.
//
// Every operation is a single statement, so each is atomic on its own in both engines without
// an explicit transaction (SQLite runs a statement under the database's write lock;
// PostgreSQL's UPDATE and INSERT … ON CONFLICT re-check a row that a concurrent transaction
// changed). That is also what keeps the hot path at one round trip: a hit costs exactly one
// prepared SELECT.
//
// "now" is read from the backend's Clock and bound as a parameter; expiry is decided against
// it (an entry is expired once `expires <= now`, as Expiry::expired says), never against the
// database's clock — so an injected clock controls expiry in tests, for both engines.
#include <algorithm>
#include <limits>
#include <numeric>
#include <utility>

#include "backends/sql/sql_backend.h"

namespace cachekit::sql_internal {

namespace {

Param expires_param(Expiry expiry) {
  return expiry.is_never() ? Param::null_integer() : Param::integer(expiry.epoch_ms());
}

std::optional<backend_detail::CircuitBreakerOptions> breaker_options(const SqlSettings& settings) {
  if (settings.failure_threshold == 0) return std::nullopt;
  return backend_detail::CircuitBreakerOptions{settings.failure_threshold, settings.retry_interval};
}

}  // namespace

SqlBackend::SqlBackend(std::unique_ptr<Engine> engine, SqlSettings settings)
    : engine_(std::move(engine)),
      settings_(std::move(settings)),
      clock_(settings_.clock != nullptr ? settings_.clock : &SystemClock::instance()),
      statements_(build_statements(engine_->dialect(), settings_.table)),
      pool_(*engine_, settings_.max_connections, breaker_options(settings_),
            std::string(engine_->name()) + " " + engine_->location()) {
  info_.name = std::string(engine_->name());
  info_.outlives_process = true;
  info_.supports_keys = true;
  info_.supports_stats = true;
}

std::int64_t SqlBackend::now_ms() const noexcept {
  return clock_->now().time_since_epoch().count();
}

bool SqlBackend::live(const Row& row, int column, std::int64_t now) {
  return row.is_null(column) || row.integer(column) > now;
}

Status SqlBackend::run(const Statement& statement, std::span<const Param> params, RowFn on_row,
                       std::int64_t* affected) {
  const Deadline deadline = SteadyClock::now() + settings_.timeout;
  for (int attempt = 0;; ++attempt) {
    auto lease = pool_.acquire(deadline);
    if (!lease.ok()) return lease.status();
    bool delivered = false;
    auto forward = [&](const Row& row) {
      delivered = true;
      on_row(row);
    };
    Status status = (*lease)->execute(statement, params, RowFn(forward), affected, deadline);
    if (status.ok()) return status;
    // A connection that sat idle across a server restart fails on first use; the statement
    // never ran, or ran and can safely run again. Anything else is reported as it is.
    const bool stale = attempt == 0 && lease->reused() && (*lease)->broken();
    if (!stale || !statement.idempotent || delivered || status.code() != StatusCode::kUnavailable) {
      return status;
    }
  }
}

Result<std::optional<Bytes>> SqlBackend::get(std::string_view key) {
  const std::int64_t now = now_ms();
  std::optional<Bytes> value;
  bool expired = false;
  auto on_row = [&](const Row& row) {
    if (live(row, 1, now)) {
      value.emplace(row.bytes(0));
    } else {
      expired = true;
    }
  };
  const Param params[] = {Param::text(key)};
  if (Status s = run(statements_[kGet], params, RowFn(on_row)); !s.ok()) return s;
  if (expired) {
    // Lazy removal, conditional on the row still being expired so that a concurrent set is
    // not lost. Its failure changes nothing for the caller: the periodic cleanup retries.
    const Param remove[] = {Param::text(key), Param::integer(now)};
    (void)run(statements_[kDeleteIfExpired], remove);
  }
  return value;
}

Status SqlBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  const std::int64_t now = now_ms();
  if (!expiry.is_never() && expiry.epoch_ms() <= now) return erase(key).status();
  before_insert(1);
  const Param params[] = {Param::text(key), Param::blob(value), expires_param(expiry),
                          Param::integer(now)};
  return run(statements_[kSet], params);
}

Result<bool> SqlBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  const std::int64_t now = now_ms();
  if (!expiry.is_never() && expiry.epoch_ms() <= now) {
    auto exists = contains(key);
    if (!exists.ok()) return exists.status();
    return !*exists;
  }
  before_insert(1);
  const Param params[] = {Param::text(key), Param::blob(value), expires_param(expiry),
                          Param::integer(now)};
  std::int64_t affected = 0;
  if (Status s = run(statements_[kAdd], params, {}, &affected); !s.ok()) return s;
  return affected > 0;
}

Result<bool> SqlBackend::touch(std::string_view key, Expiry expiry) {
  const std::int64_t now = now_ms();
  if (!expiry.is_never() && expiry.epoch_ms() <= now) return erase(key);
  const Param params[] = {Param::text(key), expires_param(expiry), Param::integer(now)};
  std::int64_t affected = 0;
  if (Status s = run(statements_[kTouch], params, {}, &affected); !s.ok()) return s;
  return affected > 0;
}

Result<bool> SqlBackend::erase(std::string_view key) {
  const std::int64_t now = now_ms();
  bool removed_live = false;
  auto on_row = [&](const Row& row) { removed_live = live(row, 0, now); };
  const Param params[] = {Param::text(key)};
  if (Status s = run(statements_[kErase], params, RowFn(on_row)); !s.ok()) return s;
  return removed_live;
}

Result<bool> SqlBackend::erase_if_value(std::string_view key, std::string_view expected) {
  const std::int64_t now = now_ms();
  bool removed_live = false;
  auto on_row = [&](const Row& row) { removed_live = live(row, 0, now); };
  const Param params[] = {Param::text(key), Param::blob(expected)};
  if (Status s = run(statements_[kEraseIfValue], params, RowFn(on_row)); !s.ok()) return s;
  return removed_live;
}

// One UPDATE computes the new value in the database (SQLite: a registered function that
// applies parse_decimal and checked_add; PostgreSQL: a numeric expression guarded by a regular
// expression and the overflow bounds), so concurrent increments from any number of processes
// never lose an update, and the expiry column is left as it was. Only when the UPDATE matched
// nothing does a second statement find out why.
Result<std::int64_t> SqlBackend::incr(std::string_view key, std::int64_t delta) {
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::int64_t lowest = delta < 0 ? kMin - delta : kMin;
  const std::int64_t highest = delta > 0 ? kMax - delta : kMax;
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::int64_t now = now_ms();
    const Param params[] = {Param::text(key), Param::integer(delta), Param::integer(now),
                            Param::integer(lowest), Param::integer(highest)};
    std::optional<std::int64_t> result;
    auto on_row = [&](const Row& row) { result = parse_decimal(row.bytes(0)); };
    if (Status s = run(statements_[kIncr], params, RowFn(on_row)); !s.ok()) return s;
    if (result) return *result;
    auto why = classify_failed_incr(key, delta, now);
    // An ok answer means the value changed between the two statements: try again.
    if (!why.ok()) return why;
  }
  return Status(StatusCode::kUnavailable, "incr kept racing with concurrent writers");
}

Result<std::int64_t> SqlBackend::classify_failed_incr(std::string_view key, std::int64_t delta,
                                                      std::int64_t now) {
  std::optional<std::string> value;
  auto on_row = [&](const Row& row) {
    if (live(row, 1, now)) value.emplace(row.bytes(0));
  };
  const Param params[] = {Param::text(key)};
  if (Status s = run(statements_[kGet], params, RowFn(on_row)); !s.ok()) return s;
  if (!value) return not_found_error("key not found");
  auto number = parse_decimal(*value);
  if (!number) {
    return Status(StatusCode::kFailedPrecondition, "the value is not a decimal integer");
  }
  auto sum = checked_add(*number, delta);
  if (!sum.ok()) return sum.status();
  return *sum;
}

Status SqlBackend::clear() {
  if (settings_.clear_prefix.empty()) return run(statements_[kClear], {});
  return clear_prefix(settings_.clear_prefix);
}

Result<Ttl> SqlBackend::ttl(std::string_view key) {
  const std::int64_t now = now_ms();
  Ttl ttl = Ttl::missing();
  auto on_row = [&](const Row& row) {
    const Expiry expiry = row.is_null(0) ? Expiry::never() : Expiry::from_epoch_ms(row.integer(0));
    ttl = Ttl::of(expiry, TimePoint(std::chrono::milliseconds(now)));
  };
  const Param params[] = {Param::text(key)};
  if (Status s = run(statements_[kExpiry], params, RowFn(on_row)); !s.ok()) return s;
  return ttl;
}

Result<bool> SqlBackend::contains(std::string_view key) {
  auto t = ttl(key);
  if (!t.ok()) return t.status();
  return !t->is_missing();
}

// Keys are deduplicated and looked up by binary search over a sorted index, so a batch costs
// no allocation per key and a key listed twice gets its value twice.
Result<std::vector<std::optional<Bytes>>> SqlBackend::get_many(
    std::span<const std::string_view> keys) {
  std::vector<std::optional<Bytes>> out(keys.size());
  std::vector<std::size_t> order(keys.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](auto a, auto b) { return keys[a] < keys[b]; });
  std::vector<Param> params;
  const std::int64_t now = now_ms();
  auto on_row = [&](const Row& row) {
    if (!live(row, 2, now)) return;
    const std::string_view key = row.bytes(0);
    auto it = std::lower_bound(order.begin(), order.end(), key,
                               [&](std::size_t i, std::string_view k) { return keys[i] < k; });
    const Bytes value(row.bytes(1));
    for (; it != order.end() && keys[*it] == key; ++it) out[*it] = value;
  };
  for (std::size_t i = 0; i < order.size();) {
    params.clear();
    for (; i < order.size() && params.size() < kMaxBatch; ++i) {
      if (params.empty() || params.back().bytes != keys[order[i]]) {
        params.push_back(Param::text(keys[order[i]]));
      }
    }
    const Statement statement =
        get_many_statement(engine_->dialect(), settings_.table, params.size());
    if (Status s = run(statement, params, RowFn(on_row)); !s.ok()) return s;
  }
  return out;
}

// The upsert rows are sorted by key: two PostgreSQL transactions that lock the same rows in
// the same order cannot deadlock. A key given twice keeps its last value, as a loop of set()
// would, and a multi-row upsert may not touch one row twice.
Result<std::vector<std::size_t>> SqlBackend::set_many(std::span<const KeyValue> items,
                                                      Expiry expiry) {
  const std::int64_t now = now_ms();
  if (!expiry.is_never() && expiry.epoch_ms() <= now) {
    std::vector<std::string_view> keys;
    for (const auto& item : items) keys.push_back(item.key);
    auto erased = erase_many(keys);
    if (!erased.ok()) return erased.status();
    return std::vector<std::size_t>{};
  }
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](auto a, auto b) { return items[a].key < items[b].key; });
  std::vector<KeyValue> unique;
  for (std::size_t i = 0; i < order.size(); ++i) {
    const bool last_of_key =
        i + 1 == order.size() || items[order[i + 1]].key != items[order[i]].key;
    if (last_of_key) unique.push_back(items[order[i]]);
  }
  before_insert(static_cast<std::int64_t>(unique.size()));
  std::vector<std::string_view> failed_keys;
  Status last_error;
  const Param expires = expires_param(expiry);
  for (std::size_t first = 0; first < unique.size(); first += kMaxBatch) {
    auto batch = std::span(unique).subspan(first, std::min(kMaxBatch, unique.size() - first));
    auto stored = set_batch(batch, expires, now);
    if (stored.ok()) continue;
    last_error = stored.status();
    for (const auto& item : batch) failed_keys.push_back(item.key);
  }
  if (failed_keys.size() == unique.size() && !unique.empty()) return last_error;
  std::vector<std::size_t> failed;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (std::binary_search(failed_keys.begin(), failed_keys.end(), items[i].key)) {
      failed.push_back(i);
    }
  }
  return failed;
}

Result<std::size_t> SqlBackend::set_batch(std::span<const KeyValue> items, const Param& expires,
                                          std::int64_t now) {
  std::vector<Param> params{expires, Param::integer(now)};
  params.reserve(2 + 2 * items.size());
  for (const auto& item : items) {
    params.push_back(Param::text(item.key));
    params.push_back(Param::blob(item.value));
  }
  const Statement statement = set_many_statement(engine_->dialect(), settings_.table, items.size());
  if (Status s = run(statement, params); !s.ok()) return s;
  return items.size();
}

Result<std::size_t> SqlBackend::erase_many(std::span<const std::string_view> keys) {
  const std::int64_t now = now_ms();
  std::size_t removed = 0;
  auto on_row = [&](const Row& row) { removed += live(row, 0, now) ? 1 : 0; };
  std::vector<Param> params;
  for (std::size_t first = 0; first < keys.size(); first += kMaxBatch) {
    params.clear();
    for (std::size_t i = first; i < keys.size() && i < first + kMaxBatch; ++i) {
      params.push_back(Param::text(keys[i]));
    }
    const Statement statement =
        erase_many_statement(engine_->dialect(), settings_.table, params.size());
    if (Status s = run(statement, params, RowFn(on_row)); !s.ok()) return s;
  }
  return removed;
}

}  // namespace cachekit::sql_internal
