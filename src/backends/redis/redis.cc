// The Redis backend's key operations: one round trip each, on a pooled connection.
//
// Command choices:
//  - set/add: SET ... PX so the value and its expiry land atomically (SET + EXPIRE would
//    leave a persistent key behind if the second command failed). PX is computed from the
//    absolute Expiry and the backend's Clock; the server then keeps its own time.
//  - erase/erase_many: UNLINK, which frees a large value off the server's main thread.
//  - touch with "never": PERSIST answers 0 both for a missing key and for a key that had no
//    expiry, so EXISTS is pipelined behind it to tell them apart.
//  - incr: INCRBY alone would create a missing key (Django's contract says kNotFound) and
//    EXISTS-then-INCRBY from the client races with expiry and erase, so a three-line Lua
//    script does both atomically on the server; INCRBY keeps the key's TTL. The script returns
//    the new value as the string GET reads, not INCRBY's integer: an integer crossing into Lua
//    becomes a double and loses the low bits above 2^53. Errors from
//    INCRBY come back as text: "not an integer" (kFailedPrecondition) and "overflow"
//    (kOutOfRange).
//  - get_many: one MGET; set_many: one pipeline of SET PX (one send, one read pass).
#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "backends/redis/async_reads.h"
#include "backends/redis/redis_backend.h"
#include "backends/redis/tracking.h"

namespace cachekit::redis_internal {
namespace {

constexpr Script kIncrScript{
    "cf83965f298ac51f3e4a192334ff97c4dd405fb6",
    "if redis.call('EXISTS',KEYS[1])==1 then redis.call('INCRBY',KEYS[1],ARGV[1]) "
    "return redis.call('GET',KEYS[1]) else return false end"};

Result<std::optional<Bytes>> optional_bytes(std::string_view where, const redisReply& reply) {
  if (reply.type == REDIS_REPLY_NIL) return std::optional<Bytes>();
  if (reply.type == REDIS_REPLY_STRING) {
    return std::optional<Bytes>(Bytes(std::string_view(reply.str, reply.len)));
  }
  return unexpected_reply(where, "GET", reply);
}

Result<std::int64_t> integer(std::string_view where, std::string_view command,
                             const Result<Reply>& reply) {
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return unexpected_reply(where, command, **reply);
  return static_cast<std::int64_t>((*reply)->integer);
}

Status incr_error(std::string_view where, const redisReply& reply) {
  std::string_view text(reply.str, reply.len);
  if (text.find("not an integer") != std::string_view::npos) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("redis {}: the value is not an integer", where));
  }
  if (text.find("overflow") != std::string_view::npos) {
    return Status(StatusCode::kOutOfRange, fmt::format("redis {}: incr would overflow", where));
  }
  return server_error(where, reply);
}

// The PX argument for a live lifetime; nullopt for never.
std::optional<std::int64_t> px(Ttl lifetime) {
  if (!lifetime.expires()) return std::nullopt;
  return lifetime.remaining().count();
}

void set_command(CommandBuffer& out, std::string_view ns, std::string_view key,
                 std::string_view value, std::optional<std::int64_t> ms, bool only_if_missing) {
  out.begin(3 + (ms ? 2 : 0) + (only_if_missing ? 1 : 0));
  out.arg("SET");
  out.arg(ns, key);
  out.arg(value);
  if (only_if_missing) out.arg("NX");
  if (ms) {
    out.arg("PX");
    out.arg(*ms);
  }
}

}  // namespace

// ---- helpers shared with keyspace.cc and locks.cc ----

Result<Reply> round_trip(Connection& connection) {
  if (Status s = connection.send(); !s.ok()) return s;
  return connection.read_ok();
}

Result<Reply> run_script(Connection& connection, const Script& script, std::string_view key_head,
                         std::string_view key, std::string_view argument) {
  for (std::string_view command : {"EVALSHA", "EVAL"}) {
    CommandBuffer& out = connection.out();
    out.begin(5);
    out.arg(command);
    out.arg(command == "EVAL" ? script.source : script.sha1);
    out.arg("1");
    out.arg(key_head, key);
    out.arg(argument);
    if (Status s = connection.send(); !s.ok()) return s;
    auto reply = connection.read();
    if (!reply.ok()) return reply;
    bool unknown = (*reply)->type == REDIS_REPLY_ERROR &&
                   std::string_view((*reply)->str, (*reply)->len).starts_with("NOSCRIPT");
    if (!unknown) return reply;
  }
  return internal_error("redis: EVAL answered NOSCRIPT");
}

Status unexpected_reply(std::string_view where, std::string_view command, const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR) return server_error(where, reply);
  return internal_error(
      fmt::format("redis {}: unexpected reply type {} to {}", where, reply.type, command));
}

// ---- construction ----

Result<std::shared_ptr<RedisBackend>> RedisBackend::make(RedisOptions options) {
  if (options.locations.empty()) {
    return invalid_argument_error(
        "the redis backend needs a location, e.g. \"redis://127.0.0.1:6379/0\"");
  }
  std::vector<Endpoint> endpoints;
  std::optional<SentinelLocation> sentinel;
  for (const auto& location : options.locations) {
    if (is_sentinel_url(location)) {
      if (options.locations.size() != 1) {
        return invalid_argument_error(
            "redis: a sentinel:// location must be the only one: the sentinels name the primary "
            "and, with ?replicas=true, the replicas");
      }
      auto parsed = parse_sentinel_url(location);
      if (!parsed.ok()) return parsed.status();
      sentinel = std::move(parsed).value();
      continue;
    }
    auto endpoint = parse_url(location);
    if (!endpoint.ok()) return endpoint.status();
    endpoints.push_back(std::move(endpoint).value());
  }
  auto positive = [](std::chrono::milliseconds d) { return d.count() > 0; };
  if (!positive(options.connect_timeout) || !positive(options.io_timeout) ||
      !positive(options.pool_wait) || options.pool_size == 0) {
    return invalid_argument_error(
        "redis: connect_timeout, io_timeout, pool_wait and pool_size must be positive");
  }
  // WAIT's reply comes after its own timeout; a shorter socket timeout would break the
  // connection on every slow replica.
  if (options.wait_replicas > 0 && options.wait_timeout >= options.io_timeout) {
    return invalid_argument_error("redis: wait_timeout must be shorter than io_timeout");
  }
  return std::shared_ptr<RedisBackend>(
      new RedisBackend(std::move(options), std::move(endpoints), std::move(sentinel)));
}

// With Sentinel the first discovery happens here, bounded by the timeouts; when no sentinel
// answers, the backend starts with no primary (calls fail with kUnavailable) and the watcher
// keeps asking.
RedisBackend::RedisBackend(RedisOptions options, std::vector<Endpoint> endpoints,
                           std::optional<SentinelLocation> sentinel)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock::instance()),
      pool_options_{{options_.connect_timeout, options_.io_timeout},
                    options_.pool_size,
                    options_.pool_wait,
                    options_.retry_after,
                    std::max(1U, options_.down_after_failures)},
      follows_sentinel_(sentinel.has_value()),
      sentinel_(std::move(sentinel)) {
  info_.name = "redis";
  info_.outlives_process = true;
  info_.supports_keys = true;
  info_.supports_stats = true;
  info_.key_policy = KeyPolicy::kWarn;  // Redis keys are binary-safe, up to 512 MB
  // Behind Sentinel the change feed watches the primary of the moment (watch_changes).
  info_.has_change_feed = true;
  if (!endpoints.empty()) primary_ = endpoints.front();
  auto nodes = std::make_shared<Nodes>();
  for (auto& endpoint : endpoints)
    nodes->pools.push_back(std::make_shared<Pool>(std::move(endpoint), pool_options_));
  nodes_ = std::move(nodes);
  if (!sentinel_) return;
  auto found = discover(*sentinel_, pool_options_.timeouts, sentinel_->read_from_replicas);
  if (found.ok()) follow(*found);
  watcher_ = std::make_unique<SentinelWatcher>(*sentinel_, pool_options_.timeouts,
                                               [this](const Discovery& d) { follow(d); });
}

Status RedisBackend::failed(Status status) {
  if (watcher_ != nullptr && status.is_transient()) watcher_->request_refresh();
  return status;
}

Status RedisBackend::no_primary_error() const {
  return unavailable_error(
      fmt::format("redis {}: no primary known yet (no sentinel has named a reachable one)",
                  sentinel_ ? sentinel_->describe() : std::string("backend")));
}

// A new primary gets a fresh pool (and so a closed circuit breaker); a replica keeps its pool
// while the sentinels keep listing it.
void RedisBackend::follow(const Discovery& found) {
  const NodesView current = nodes();
  const auto& pools = current->pools;
  const std::string primary = found.primary.describe();
  bool same = !pools.empty() && pools.front()->where() == primary &&
              pools.size() == 1 + found.replicas.size();
  auto next = std::make_shared<Nodes>();
  next->pools.push_back(same ? pools.front()
                             : std::make_shared<Pool>(found.primary, pool_options_));
  for (const auto& replica : found.replicas) {
    auto known = std::find_if(pools.begin() + (pools.empty() ? 0 : 1), pools.end(),
                              [&](const auto& p) { return p->where() == replica.describe(); });
    same = same && known != pools.end();
    next->pools.push_back(known != pools.end() ? *known
                                               : std::make_shared<Pool>(replica, pool_options_));
  }
  if (same) return;
  if (!pools.empty() && pools.front()->where() != primary) {
    primaries_followed_.fetch_add(1, std::memory_order_relaxed);
  }
  std::lock_guard lock(nodes_mutex_);
  nodes_ = std::move(next);
}

void RedisBackend::add_sentinel_stats(StatPairs& out) const {
  if (!sentinel_) return;
  out.emplace_back("sentinel.master", sentinel_->describe());
  out.emplace_back("sentinel.primaries_followed",
                   fmt::format("{}", primaries_followed_.load(std::memory_order_relaxed)));
  if (watcher_ == nullptr) return;
  const auto c = watcher_->counters();
  out.emplace_back("sentinel.discoveries", fmt::format("{}", c.discoveries));
  out.emplace_back("sentinel.failed_discoveries", fmt::format("{}", c.failed_discoveries));
  out.emplace_back("sentinel.switches_heard", fmt::format("{}", c.switches_heard));
  out.emplace_back("sentinel.subscriptions", fmt::format("{}", c.subscriptions));
}

// The time `expiry` leaves as of now, read once: Ttl::of decides "already expired" by
// Expiry::expired, the same rule as the Cache façade and every other backend, and a lifetime
// it reports as live is at least 1 ms, so PX is never zero.
Ttl RedisBackend::lifetime(Expiry expiry) const { return Ttl::of(expiry, clock_->now()); }

// WAIT returns how many replicas acknowledged, never an error for "too few": a lagging
// replica makes reads stale, not writes fail, so its answer is only awaited.
void RedisBackend::wait_for_replicas(Connection& connection) {
  CommandBuffer& out = connection.out();
  out.begin(3);
  out.arg("WAIT");
  out.arg(std::int64_t{options_.wait_replicas});
  out.arg(std::int64_t{options_.wait_timeout.count()});
  (void)round_trip(connection);
}

// ---- single keys ----

Result<std::optional<Bytes>> RedisBackend::get(std::string_view key) {
  return on_reader([&](Connection& c) -> Result<std::optional<Bytes>> {
    c.out().begin(2);
    c.out().arg("GET");
    c.out().arg(options_.key_namespace, key);
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    return optional_bytes(c.where(), **reply);
  });
}

std::unique_ptr<AsyncReads> RedisBackend::async_reads(boost::asio::io_context& loop) {
  if (follows_sentinel_) return nullptr;
  return make_async_reads(loop, primary_, options_.key_namespace, pool_options_.timeouts);
}

// PTTL answers -2 when the key went between the two commands (another client's UNLINK or
// its expiry): that is a miss, as a GET after it would be.
Result<std::optional<StoredEntry>> RedisBackend::get_entry(std::string_view key) {
  return on_reader([&](Connection& c) -> Result<std::optional<StoredEntry>> {
    c.out().begin(2);
    c.out().arg("GET");
    c.out().arg(options_.key_namespace, key);
    c.out().begin(2);
    c.out().arg("PTTL");
    c.out().arg(options_.key_namespace, key);
    if (Status s = c.send(); !s.ok()) return s;
    auto value_reply = c.read_ok();
    if (!value_reply.ok() && c.broken()) return value_reply.status();
    auto ms = integer(c.where(), "PTTL", c.read_ok());  // read even after an error reply
    if (!value_reply.ok()) return value_reply.status();
    if (!ms.ok()) return ms.status();
    auto value = optional_bytes(c.where(), **value_reply);
    if (!value.ok()) return value.status();
    if (!value->has_value() || *ms == -2 || *ms == 0) return std::optional<StoredEntry>();
    Ttl left = *ms == -1 ? Ttl::never() : Ttl::after(std::chrono::milliseconds(*ms));
    return std::optional<StoredEntry>(StoredEntry{std::move(**value), left});
  });
}

Result<std::unique_ptr<ChangeFeed>> RedisBackend::watch_changes(ChangeListener& listener) {
  if (!info_.has_change_feed) return Backend::watch_changes(listener);
  TrackingOptions tracking{
      primary_, {options_.connect_timeout, options_.io_timeout}, options_.key_namespace};
  if (follows_sentinel_) {
    // The feed watches whichever server is the primary now, and starts over when it moves.
    tracking.find_primary = [this]() -> std::optional<Endpoint> {
      const NodesView view = nodes();
      if (view->pools.empty()) return std::nullopt;
      return view->pools.front()->endpoint();
    };
  }
  return start_tracking(std::move(tracking), listener);
}

Status RedisBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) return erase(key).status();
  auto ms = px(left);
  auto result = on_primary([&](Connection& c) -> Result<bool> {
    set_command(c.out(), options_.key_namespace, key, value, ms, false);
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    return true;
  });
  return result.status();
}

// An already-expired add "stores" (and at once loses) the value exactly when the key is
// missing, as Django's SET NX followed by DEL does.
Result<bool> RedisBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) {
    return on_primary([&](Connection& c) -> Result<bool> {
      c.out().begin(2);
      c.out().arg("EXISTS");
      c.out().arg(options_.key_namespace, key);
      auto exists = integer(c.where(), "EXISTS", round_trip(c));
      if (!exists.ok()) return exists.status();
      return *exists == 0;
    });
  }
  return on_primary([&](Connection& c) -> Result<bool> {
    set_command(c.out(), options_.key_namespace, key, value, px(left), true);
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    return (*reply)->type != REDIS_REPLY_NIL;
  });
}

Result<bool> RedisBackend::touch(std::string_view key, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) return erase(key);
  auto ms = px(left);
  return on_primary([&](Connection& c) -> Result<bool> {
    CommandBuffer& out = c.out();
    const char* command = ms ? "PEXPIRE" : "PERSIST";
    out.begin(ms ? 3 : 2);
    out.arg(command);
    out.arg(options_.key_namespace, key);
    if (ms) out.arg(*ms);
    if (!ms) {
      out.begin(2);
      out.arg("EXISTS");
      out.arg(options_.key_namespace, key);
    }
    auto first = integer(c.where(), command, round_trip(c));
    if (!first.ok()) return first.status();
    if (ms) return *first == 1;
    auto exists = integer(c.where(), "EXISTS", c.read_ok());
    if (!exists.ok()) return exists.status();
    return *exists == 1;
  });
}

Result<bool> RedisBackend::erase(std::string_view key) {
  return on_primary([&](Connection& c) -> Result<bool> {
    c.out().begin(2);
    c.out().arg("UNLINK");
    c.out().arg(options_.key_namespace, key);
    auto removed = integer(c.where(), "UNLINK", round_trip(c));
    if (!removed.ok()) return removed.status();
    return *removed > 0;
  });
}

Result<std::int64_t> RedisBackend::incr(std::string_view key, std::int64_t delta) {
  return on_primary([&](Connection& c) -> Result<std::int64_t> {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, delta).ptr;
    auto reply = run_script(c, kIncrScript, options_.key_namespace, key,
                            std::string_view(digits, static_cast<std::size_t>(end - digits)));
    if (!reply.ok()) return reply.status();
    switch ((*reply)->type) {
      case REDIS_REPLY_STRING: {
        std::int64_t value = 0;
        const char* last = (*reply)->str + (*reply)->len;
        auto [ptr, ec] = std::from_chars((*reply)->str, last, value);
        if (ec != std::errc() || ptr != last)
          return unexpected_reply(c.where(), "EVALSHA", **reply);
        return value;
      }
      case REDIS_REPLY_NIL:  // the script's `false`
        return not_found_error(fmt::format("key '{}' not found", key));
      case REDIS_REPLY_ERROR:
        return incr_error(c.where(), **reply);
      default:
        return unexpected_reply(c.where(), "EVALSHA", **reply);
    }
  });
}

Result<Ttl> RedisBackend::ttl(std::string_view key) {
  return on_reader([&](Connection& c) -> Result<Ttl> {
    c.out().begin(2);
    c.out().arg("PTTL");
    c.out().arg(options_.key_namespace, key);
    auto ms = integer(c.where(), "PTTL", round_trip(c));
    if (!ms.ok()) return ms.status();
    if (*ms == -1) return Ttl::never();
    if (*ms <= 0) return Ttl::missing();  // -2: no such key; 0: expiring this millisecond
    return Ttl::after(std::chrono::milliseconds(*ms));
  });
}

Result<bool> RedisBackend::contains(std::string_view key) {
  return on_reader([&](Connection& c) -> Result<bool> {
    c.out().begin(2);
    c.out().arg("EXISTS");
    c.out().arg(options_.key_namespace, key);
    auto exists = integer(c.where(), "EXISTS", round_trip(c));
    if (!exists.ok()) return exists.status();
    return *exists == 1;
  });
}

// ---- batches ----

Result<std::vector<std::optional<Bytes>>> RedisBackend::get_many(
    std::span<const std::string_view> keys) {
  using Values = std::vector<std::optional<Bytes>>;
  if (keys.empty()) return Values{};
  return on_reader([&](Connection& c) -> Result<Values> {
    c.out().begin(1 + keys.size());
    c.out().arg("MGET");
    for (std::string_view key : keys) c.out().arg(options_.key_namespace, key);
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    const redisReply& array = **reply;
    if (array.type != REDIS_REPLY_ARRAY || array.elements != keys.size()) {
      return unexpected_reply(c.where(), "MGET", array);
    }
    Values values;
    values.reserve(keys.size());
    for (std::size_t i = 0; i < array.elements; ++i) {
      auto value = optional_bytes(c.where(), *array.element[i]);
      if (!value.ok()) return value.status();
      values.push_back(std::move(value).value());
    }
    return values;
  });
}

// Every SET is read back even after one fails (say OOM), so the connection stays in step
// and the failed indices can be reported.
Result<std::vector<std::size_t>> RedisBackend::set_many(std::span<const KeyValue> items,
                                                        Expiry expiry) {
  using Failed = std::vector<std::size_t>;
  if (items.empty()) return Failed{};
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) {
    std::vector<std::string_view> keys;
    for (const auto& item : items) keys.push_back(item.key);
    auto erased = erase_many(keys);
    if (!erased.ok()) return erased.status();
    return Failed{};
  }
  return on_primary([&](Connection& c) -> Result<Failed> {
    for (const auto& item : items) {
      set_command(c.out(), options_.key_namespace, item.key, item.value, px(left), false);
    }
    if (Status s = c.send(); !s.ok()) return s;
    Failed failed;
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto reply = c.read();
      if (!reply.ok()) return reply.status();
      if ((*reply)->type == REDIS_REPLY_ERROR) failed.push_back(i);
    }
    return failed;
  });
}

Result<std::size_t> RedisBackend::erase_many(std::span<const std::string_view> keys) {
  if (keys.empty()) return std::size_t{0};
  return on_primary([&](Connection& c) -> Result<std::size_t> {
    c.out().begin(1 + keys.size());
    c.out().arg("UNLINK");
    for (std::string_view key : keys) c.out().arg(options_.key_namespace, key);
    auto removed = integer(c.where(), "UNLINK", round_trip(c));
    if (!removed.ok()) return removed.status();
    return static_cast<std::size_t>(*removed);
  });
}

Result<RedisBackend*> as_redis_backend(Backend& backend) {
  if (auto* redis = dynamic_cast<RedisBackend*>(&backend)) return redis;
  return invalid_argument_error(
      fmt::format("not a redis backend (it is \"{}\")", backend.info().name));
}

}  // namespace cachekit::redis_internal

namespace cachekit {

Result<std::shared_ptr<Backend>> make_redis_backend(RedisOptions options) {
  auto backend = redis_internal::RedisBackend::make(std::move(options));
  if (!backend.ok()) return backend.status();
  return std::shared_ptr<Backend>(std::move(backend).value());
}

}  // namespace cachekit
