#include "cachekit/cache.h"

#include <array>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "core/cache_counters.h"
#include "core/compression.h"
#include "core/envelope.h"
#include "core/log.h"
#include "core/refresh_executor.h"
#include "core/single_flight.h"

namespace cachekit {

namespace {

using detail::kErrors, detail::kHits, detail::kKeyWarnings, detail::kMisses, detail::kWrites;
using detail::logger;

// A NaN timeout has no meaning to saturate to: refuse it, as a bad key is refused.
Status check_timeout(Timeout t) {
  if (!t.is_invalid()) return {};
  return invalid_argument_error("the timeout is not a number (NaN seconds)");
}

}  // namespace

// Logs at most `per_second` messages a second and says how many it held back, so an outage
// of the store cannot flood the log (or slow every request down with log I/O).
struct Cache::ErrorLog {
  std::mutex mutex;
  std::chrono::steady_clock::time_point window_start{};
  std::size_t in_window = 0;
  std::size_t suppressed = 0;

  void log(std::size_t per_second, std::string_view alias, std::string_view message) {
    if (per_second == 0) return;
    std::lock_guard lock(mutex);
    auto now = std::chrono::steady_clock::now();
    if (now - window_start >= std::chrono::seconds(1)) {
      if (suppressed > 0) {
        logger()->warn("cache '{}': {} more messages suppressed", alias, suppressed);
      }
      window_start = now;
      in_window = 0;
      suppressed = 0;
    }
    if (in_window++ < per_second) {
      logger()->warn("cache '{}': {}", alias, message);
    } else {
      ++suppressed;
    }
  }
};

std::string default_key_function(std::string_view key, std::string_view prefix,
                                 std::int64_t version) {
  std::string v = std::to_string(version);
  std::string out;
  out.reserve(prefix.size() + v.size() + key.size() + 2);
  out.append(prefix).append(1, ':').append(v).append(1, ':').append(key);
  return out;
}

std::string key_problem(std::string_view final_key, std::size_t max_bytes) {
  if (final_key.size() > max_bytes) {
    return "Cache key will cause errors if used with memcached: '" + std::string(final_key) +
           "' (longer than " + std::to_string(max_bytes) + ")";
  }
  for (unsigned char c : final_key) {
    if (c <= 0x20 || c == 0x7f) {
      return "Cache key contains characters that will cause errors if used with memcached: '" +
             std::string(final_key) + "'";
    }
  }
  return {};
}

Cache::Cache(std::shared_ptr<Backend> backend, CacheOptions options)
    : backend_(std::move(backend)),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock::instance()),
      counters_(std::make_unique<Counters>()),
      error_log_(std::make_unique<ErrorLog>()),
      flights_(std::make_unique<detail::FlightTable>()),
      refresher_(std::make_unique<detail::RefreshExecutor>()) {
  if (!backend_) throw std::invalid_argument("cachekit::Cache needs a backend");
  if (options_.default_timeout.is_default() || options_.default_timeout.is_invalid()) {
    throw std::invalid_argument("cache '" + options_.alias +
                                "': the default timeout must be a duration or never");
  }
}

Cache::~Cache() = default;

std::string Cache::make_key(std::string_view key, Version version) const {
  std::int64_t v = version.value_or(options_.version);
  return options_.key_function ? options_.key_function(key, options_.key_prefix, v)
                               : default_key_function(key, options_.key_prefix, v);
}

Result<std::string> Cache::final_key(std::string_view key, Version version) const {
  std::string k = make_key(key, version);
  const BackendInfo& info = backend_->info();
  // Fast path: almost every key is short and printable.
  bool suspicious = k.size() > info.max_key_bytes;
  for (unsigned char c : k) suspicious |= (c <= 0x20 || c == 0x7f);
  if (!suspicious) return k;
  std::string problem = key_problem(k, info.max_key_bytes);
  if (problem.empty()) return k;
  if (info.key_policy == KeyPolicy::kRefuse) return invalid_argument_error(problem);
  counters_->add(kKeyWarnings);
  error_log_->log(options_.max_error_logs_per_second, options_.alias, problem);
  return k;
}

// The one place a timeout becomes an expiry. Whether it is already expired is then decided by
// Expiry::expired(now), the rule every backend applies to the expiry it is handed too.
Expiry Cache::expiry_for(Timeout timeout, TimePoint now) const {
  if (timeout.is_default()) timeout = options_.default_timeout;
  if (timeout.is_never()) return Expiry::never();
  // Zero means "already expired"; Django maps it to -1 s so that clock resolution can never
  // make `now + 0` look live.
  if (timeout.duration() <= std::chrono::milliseconds(0)) {
    return Expiry::at(now + std::min(timeout.duration(), std::chrono::milliseconds(-1000)));
  }
  return Expiry::at(now + timeout.duration());
}

void Cache::record_failure(const Status& status, std::string_view operation) const {
  counters_->add(kErrors);
  error_log_->log(options_.max_error_logs_per_second, options_.alias,
                  std::string(operation) + " failed: " + status.to_string());
}

void Cache::note_decode_failure(std::string_view key) const {
  counters_->add(kErrors);
  error_log_->log(options_.max_error_logs_per_second, options_.alias,
                  "the value under '" + std::string(key) +
                      "' could not be decoded as the requested type; treated as a miss");
}

void Cache::note_encode_failure(std::string_view key, std::string_view reason) const {
  counters_->add(kErrors);
  error_log_->log(options_.max_error_logs_per_second, options_.alias,
                  "the value for '" + std::string(key) + "' could not be encoded (" +
                      std::string(reason) + "); not stored");
}

CacheStats Cache::stats() const noexcept {
  CacheStats s;
  s.hits = counters_->sum(kHits);
  s.misses = counters_->sum(kMisses);
  s.writes = counters_->sum(kWrites);
  s.errors = counters_->sum(kErrors);
  s.key_warnings = counters_->sum(kKeyWarnings);
  s.collapsed_waits = counters_->sum(detail::kCollapsedWaits);
  s.lease_waits = counters_->sum(detail::kLeaseWaits);
  s.lease_takeovers = counters_->sum(detail::kLeaseTakeovers);
  s.stale_served_revalidate = counters_->sum(detail::kStaleServedRevalidate);
  s.stale_served_error = counters_->sum(detail::kStaleServedError);
  s.early_refreshes = counters_->sum(detail::kEarlyRefreshes);
  s.refreshes = counters_->sum(detail::kRefreshes);
  s.refresh_failures = counters_->sum(detail::kRefreshFailures);
  s.refreshes_skipped = counters_->sum(detail::kRefreshesSkipped);
  return s;
}

StrictCache Cache::strict() noexcept { return StrictCache(*this); }
ConstStrictCache Cache::strict() const noexcept { return ConstStrictCache(*this); }

// ---- strict operations ----

Result<std::optional<Bytes>> Cache::strict_get(std::string_view key, Version version) const {
  auto k = final_key(key, version);
  if (!k.ok()) return k.status();
  auto value = backend_->get(*k);
  if (!value.ok()) return value;
  if (value->has_value()) {
    auto decoded = decode_stored(std::move(**value));
    if (!decoded.ok()) return decoded.status();
    *value = visible(std::move(*decoded));
  }
  counters_->add(value->has_value() ? kHits : kMisses);
  return value;
}

std::optional<std::optional<Bytes>> Cache::get_if_in_process(std::string_view key,
                                                             Version version) const {
  auto k = final_key(key, version);
  if (!k.ok()) return std::nullopt;
  auto value = backend_->get_if_in_process(*k);
  if (!value || !value->ok()) return std::nullopt;
  std::optional<Bytes> found;
  if ((*value)->has_value()) {
    auto decoded = decode_stored(std::move(***value));
    if (!decoded.ok()) return std::nullopt;  // the full read reports it
    found = visible(std::move(*decoded));
  }
  counters_->add(found.has_value() ? kHits : kMisses);
  return found;
}

std::unique_ptr<AsyncReads> Cache::async_reads(boost::asio::io_context& loop) const {
  return backend_->async_reads(loop);
}

void Cache::get_many_async(
    AsyncReads& reads, std::span<const std::string> keys,
    std::function<void(std::optional<std::vector<std::optional<Bytes>>>)> done,
    Version version) const {
  std::vector<std::string> finals;
  finals.reserve(keys.size());
  for (const std::string& key : keys) {
    auto k = final_key(key, version);
    if (!k.ok()) {
      finals.clear();
      break;
    }
    finals.push_back(std::move(*k));
  }
  // A refused key: the reads are still asked for nothing, so that `done` runs on the loop and
  // never inside this call.
  bool refused = finals.size() != keys.size();
  reads.get_many(finals,
                 [this, refused, done = std::move(done)](std::optional<AsyncReads::Values> values) {
                   if (refused || !values) return done(std::nullopt);
                   std::vector<std::optional<Bytes>> out;
                   out.reserve(values->size());
                   for (auto& value : *values) {
                     std::optional<Bytes> found;
                     if (value) {
                       auto decoded = decode_stored(std::move(*value));
                       if (!decoded.ok())
                         return done(std::nullopt);  // the blocking read reports it
                       found = visible(std::move(*decoded));
                     }
                     out.push_back(std::move(found));
                   }
                   for (const auto& found : out)
                     counters_->add(found.has_value() ? kHits : kMisses);
                   done(std::move(out));
                 });
}

// A get_or_refresh envelope reads as its payload while fresh and as a miss once stale: a plain
// reader has no stale-while-revalidate of its own, so it must not be handed stale data as if
// fresh (src/core/envelope.h).
std::optional<Bytes> Cache::visible(Bytes decoded) const {
  if (!detail::is_envelope(decoded.view())) return decoded;
  auto envelope = detail::unwrap_envelope(decoded);
  if (clock_->now() < envelope->fresh_until) return std::move(envelope->payload);
  return std::nullopt;
}

Result<std::optional<std::string>> Cache::encode_for_store(std::string_view value) const {
  auto encoded =
      detail::compress_for_store(value, options_.compress_min_bytes, options_.compress_level);
  // Refused now rather than stored as an entry every read would then count as an error.
  if (encoded.ok() && encoded->has_value() && value.size() > options_.decompress_max_bytes) {
    return Status(StatusCode::kResourceExhausted,
                  "the value has " + std::to_string(value.size()) +
                      " bytes, over the decompress_max_bytes limit of " +
                      std::to_string(options_.decompress_max_bytes));
  }
  return encoded;
}

Result<Bytes> Cache::decode_stored(Bytes stored) const {
  if (options_.compress_min_bytes == 0 || !detail::is_zstd_frame(stored.view())) return stored;
  return detail::decompress_stored(stored.view(), options_.decompress_max_bytes);
}

Status Cache::strict_set(std::string_view key, std::string_view value, Timeout t, Version v) {
  if (Status s = check_timeout(t); !s.ok()) return s;
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  counters_->add(kWrites);
  const TimePoint now = clock_->now();
  const Expiry expiry = expiry_for(t, now);
  if (expiry.expired(now)) return backend_->erase(*k).status();
  auto encoded = encode_for_store(value);
  if (!encoded.ok()) return encoded.status();
  return backend_->set(*k, *encoded ? std::string_view(**encoded) : value, expiry);
}

Result<bool> Cache::strict_add(std::string_view key, std::string_view value, Timeout t, Version v) {
  if (Status s = check_timeout(t); !s.ok()) return s;
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  counters_->add(kWrites);
  const TimePoint now = clock_->now();
  const Expiry expiry = expiry_for(t, now);
  if (expiry.expired(now)) {
    // Nothing retrievable is stored, but add "succeeds" when the key was free (Django).
    auto exists = backend_->contains(*k);
    if (!exists.ok()) return exists.status();
    return !*exists;
  }
  auto encoded = encode_for_store(value);
  if (!encoded.ok()) return encoded.status();
  return backend_->add(*k, *encoded ? std::string_view(**encoded) : value, expiry);
}

Result<bool> Cache::strict_touch(std::string_view key, Timeout t, Version v) {
  if (Status s = check_timeout(t); !s.ok()) return s;
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  const TimePoint now = clock_->now();
  const Expiry expiry = expiry_for(t, now);
  if (expiry.expired(now)) return backend_->erase(*k);
  return backend_->touch(*k, expiry);
}

Result<bool> Cache::strict_erase(std::string_view key, Version v) {
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  return backend_->erase(*k);
}

Result<bool> Cache::strict_erase_if_value(std::string_view key, std::string_view expected,
                                          Version v) {
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  return backend_->erase_if_value(*k, expected);
}

Result<bool> Cache::strict_contains(std::string_view key, Version v) const {
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  return backend_->contains(*k);
}

Result<std::int64_t> Cache::strict_incr(std::string_view key, std::int64_t delta, Version v) {
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  auto r = backend_->incr(*k, delta);
  if (r.code() == StatusCode::kNotFound) {
    return not_found_error("Key '" + std::string(key) + "' not found");
  }
  if (r.ok()) counters_->add(kWrites);
  return r;
}

Result<std::int64_t> Cache::strict_incr_version(std::string_view key, std::int64_t delta,
                                                Version v) {
  std::int64_t from = v.value_or(options_.version);
  std::int64_t to = 0;
  if (__builtin_add_overflow(from, delta, &to)) {
    return Status(StatusCode::kOutOfRange, "version overflow");
  }
  auto old_key = final_key(key, from);
  if (!old_key.ok()) return old_key.status();
  auto new_key = final_key(key, to);
  if (!new_key.ok()) return new_key.status();
  auto value = backend_->get(*old_key);
  if (!value.ok()) return value.status();
  if (!value->has_value()) return not_found_error("Key '" + std::string(key) + "' not found");
  auto ttl = backend_->ttl(*old_key);
  if (!ttl.ok()) return ttl.status();
  if (ttl->is_missing()) return not_found_error("Key '" + std::string(key) + "' not found");
  // Unlike Django's generic version, the value keeps its remaining lifetime.
  Expiry expiry = ttl->is_never() ? Expiry::never() : Expiry::at(clock_->now() + ttl->remaining());
  if (Status s = backend_->set(*new_key, (*value)->view(), expiry); !s.ok()) return s;
  if (auto erased = backend_->erase(*old_key); !erased.ok()) return erased.status();
  counters_->add(kWrites);
  return to;
}

Status Cache::strict_clear() { return backend_->clear(); }

Result<Ttl> Cache::strict_ttl(std::string_view key, Version v) const {
  auto k = final_key(key, v);
  if (!k.ok()) return k.status();
  return backend_->ttl(*k);
}

Result<std::unordered_map<std::string, Bytes>> Cache::strict_get_many(
    const std::vector<std::string_view>& keys, Version v) const {
  std::vector<std::string> finals;
  finals.reserve(keys.size());
  for (std::string_view key : keys) {
    auto k = final_key(key, v);
    if (!k.ok()) return k.status();
    finals.push_back(std::move(*k));
  }
  std::vector<std::string_view> views(finals.begin(), finals.end());
  auto values = backend_->get_many(views);
  if (!values.ok()) return values.status();
  std::unordered_map<std::string, Bytes> out;
  std::uint64_t hits = 0;
  for (std::size_t i = 0; i < keys.size() && i < values->size(); ++i) {
    if (!(*values)[i]) continue;
    auto decoded = decode_stored(std::move(*(*values)[i]));
    if (!decoded.ok()) {  // one corrupt entry is a miss for its key, not a failed batch
      record_failure(decoded.status(), "get_many");
      continue;
    }
    auto shown = visible(std::move(*decoded));
    if (!shown) continue;
    out.insert_or_assign(std::string(keys[i]), std::move(*shown));
    ++hits;
  }
  counters_->add(kHits, hits);
  counters_->add(kMisses, keys.size() - hits);
  return out;
}

Result<std::vector<std::string>> Cache::strict_set_many(
    const std::vector<std::pair<std::string_view, std::string_view>>& items, Timeout t, Version v) {
  if (Status s = check_timeout(t); !s.ok()) return s;
  std::vector<std::string> finals;
  finals.reserve(items.size());
  for (const auto& item : items) {
    auto k = final_key(item.first, v);
    if (!k.ok()) return k.status();
    finals.push_back(std::move(*k));
  }
  counters_->add(kWrites, items.size());
  const TimePoint now = clock_->now();
  const Expiry expiry = expiry_for(t, now);
  if (expiry.expired(now)) {
    std::vector<std::string_view> views(finals.begin(), finals.end());
    auto erased = backend_->erase_many(views);
    if (!erased.ok()) return erased.status();
    return std::vector<std::string>{};
  }
  std::vector<std::optional<std::string>> encoded(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto e = encode_for_store(items[i].second);
    if (!e.ok()) return e.status();
    encoded[i] = std::move(*e);
  }
  std::vector<KeyValue> kvs;
  kvs.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    kvs.push_back({finals[i], encoded[i] ? std::string_view(*encoded[i]) : items[i].second});
  }
  auto failed = backend_->set_many(kvs, expiry);
  if (!failed.ok()) return failed.status();
  std::vector<std::string> out;
  for (std::size_t i : *failed) out.emplace_back(items[i].first);
  return out;
}

Result<std::size_t> Cache::strict_erase_many(const std::vector<std::string_view>& keys, Version v) {
  std::vector<std::string> finals;
  finals.reserve(keys.size());
  for (std::string_view key : keys) {
    auto k = final_key(key, v);
    if (!k.ok()) return k.status();
    finals.push_back(std::move(*k));
  }
  std::vector<std::string_view> views(finals.begin(), finals.end());
  return backend_->erase_many(views);
}

Result<std::vector<std::string>> Cache::strict_keys(std::string_view pattern, Version v) const {
  if (options_.key_function) {
    return unimplemented_error("keys() needs the default key function to map keys back");
  }
  std::string head = default_key_function("", options_.key_prefix, v.value_or(options_.version));
  auto finals = backend_->keys(escape_glob(head) + std::string(pattern));
  if (!finals.ok()) return finals.status();
  std::vector<std::string> out;
  out.reserve(finals->size());
  for (const std::string& k : *finals) {
    if (k.starts_with(head)) out.push_back(k.substr(head.size()));
  }
  return out;
}

Result<std::int64_t> StrictCache::decr(std::string_view key, std::int64_t delta, Version v) {
  if (delta == std::numeric_limits<std::int64_t>::min()) {
    return Status(StatusCode::kOutOfRange, "decr delta out of range");
  }
  return incr(key, -delta, v);
}

// ---- the fail-open face ----

std::optional<Bytes> Cache::get(std::string_view key, Version version) const {
  auto r = strict_get(key, version);
  if (r.ok()) return std::move(*r);
  record_failure(r.status(), "get");
  return std::nullopt;
}

bool Cache::set(std::string_view key, std::string_view value, Timeout t, Version v) {
  Status s = strict_set(key, value, t, v);
  if (!s.ok()) record_failure(s, "set");
  return s.ok();
}

bool Cache::add(std::string_view key, std::string_view value, Timeout t, Version v) {
  auto r = strict_add(key, value, t, v);
  if (r.ok()) return *r;
  record_failure(r.status(), "add");
  return false;
}

bool Cache::touch(std::string_view key, Timeout t, Version v) {
  auto r = strict_touch(key, t, v);
  if (r.ok()) return *r;
  record_failure(r.status(), "touch");
  return false;
}

bool Cache::erase(std::string_view key, Version v) {
  auto r = strict_erase(key, v);
  if (r.ok()) return *r;
  record_failure(r.status(), "erase");
  return false;
}

bool Cache::contains(std::string_view key, Version v) const {
  auto r = strict_contains(key, v);
  if (r.ok()) return *r;
  record_failure(r.status(), "contains");
  return false;
}

Result<std::int64_t> Cache::incr(std::string_view key, std::int64_t delta, Version v) {
  auto r = strict_incr(key, delta, v);
  if (!r.ok() && r.code() != StatusCode::kNotFound) record_failure(r.status(), "incr");
  return r;
}

Result<std::int64_t> Cache::decr(std::string_view key, std::int64_t delta, Version v) {
  if (delta == std::numeric_limits<std::int64_t>::min()) {
    return Status(StatusCode::kOutOfRange, "decr delta out of range");
  }
  return incr(key, -delta, v);
}

Result<std::int64_t> Cache::incr_version(std::string_view key, std::int64_t delta, Version v) {
  auto r = strict_incr_version(key, delta, v);
  if (!r.ok() && r.code() != StatusCode::kNotFound) record_failure(r.status(), "incr_version");
  return r;
}

Result<std::int64_t> Cache::decr_version(std::string_view key, std::int64_t delta, Version v) {
  if (delta == std::numeric_limits<std::int64_t>::min()) {
    return Status(StatusCode::kOutOfRange, "decr_version delta out of range");
  }
  return incr_version(key, -delta, v);
}

bool Cache::clear() {
  Status s = strict_clear();
  if (!s.ok()) record_failure(s, "clear");
  return s.ok();
}

Ttl Cache::ttl(std::string_view key, Version v) const {
  auto r = strict_ttl(key, v);
  if (r.ok()) return *r;
  record_failure(r.status(), "ttl");
  return Ttl::missing();
}

std::unordered_map<std::string, Bytes> Cache::get_many_views(
    const std::vector<std::string_view>& keys, Version version) const {
  auto r = strict_get_many(keys, version);
  if (r.ok()) return std::move(*r);
  record_failure(r.status(), "get_many");
  return {};
}

std::vector<std::string> Cache::set_many_views(
    const std::vector<std::pair<std::string_view, std::string_view>>& items, Timeout timeout,
    Version version) {
  auto r = strict_set_many(items, timeout, version);
  if (r.ok()) return std::move(*r);
  record_failure(r.status(), "set_many");
  std::vector<std::string> all;
  all.reserve(items.size());
  for (const auto& item : items) all.emplace_back(item.first);
  return all;
}

std::size_t Cache::erase_many_views(const std::vector<std::string_view>& keys, Version version) {
  auto r = strict_erase_many(keys, version);
  if (r.ok()) return *r;
  record_failure(r.status(), "erase_many");
  return 0;
}

}  // namespace cachekit
