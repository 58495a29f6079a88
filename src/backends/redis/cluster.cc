// The Redis Cluster backend: slot routing, the slot map, and the single-key operations.
//
// Routing. A key's slot (slots.h) picks its shard in the current slot map; the command goes
// to the shard's primary (or, for reads with read_from_replicas, to a replica, with READONLY
// pipelined in front: the pool opens plain connections, and READONLY costs the server
// nothing and the client no extra round trip). The server's error replies steer the rest:
//  - MOVED slot host:port: the slot lives elsewhere for good. The command is sent there at
//    once and the whole map is refreshed (rate-limited), since a resharding or a failover
//    moves many slots.
//  - ASK slot host:port: the slot is being migrated and this key is already on the target:
//    ASKING then the command, to that node, once; the map is left as it is.
//  - TRYAGAIN / CLUSTERDOWN: a migration or a failover in progress: wait (5 ms, doubling) and
//    try again, within the call's budget.
// Each of these replies guarantees the command did not run, so even incr follows them. After a
// transport error the command may have run: incr fails; an idempotent command is sent once
// more only when the refreshed map names another node for its slot (a failover happened).
// Every call is bounded by kBudgetFactor io_timeouts and kMaxRedirects redirects.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <thread>

#include "backends/redis/cluster_backend.h"
#include "backends/redis/redis_backend.h"

namespace cachekit::redis_internal {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxRedirects = 5;
constexpr int kBudgetFactor = 4;
constexpr std::chrono::milliseconds kFirstPause{5};

// The incr script of redis.cc (the same text, so the same SHA1 the server caches).
constexpr Script kIncrScript{
    "cf83965f298ac51f3e4a192334ff97c4dd405fb6",
    "if redis.call('EXISTS',KEYS[1])==1 then redis.call('INCRBY',KEYS[1],ARGV[1]) "
    "return redis.call('GET',KEYS[1]) else return false end"};
// The compare-and-delete script of locks.cc.
constexpr Script kEraseIfValueScript{
    "e8022015b1db2126f2af52e2659c302bb86e2557",
    "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) "
    "else return 0 end"};

std::string_view text_of(const redisReply& reply) { return {reply.str, reply.len}; }

bool is_error(const redisReply& reply, std::string_view code) {
  return reply.type == REDIS_REPLY_ERROR && text_of(reply).starts_with(code);
}

Result<std::optional<Bytes>> optional_bytes(std::string_view where, const redisReply& reply) {
  if (reply.type == REDIS_REPLY_NIL) return std::optional<Bytes>();
  if (reply.type == REDIS_REPLY_STRING) return std::optional<Bytes>(Bytes(text_of(reply)));
  return unexpected_reply(where, "GET", reply);
}

Result<std::int64_t> integer(std::string_view command, const Result<Reply>& reply) {
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return unexpected_reply("cluster", command, **reply);
  return static_cast<std::int64_t>((*reply)->integer);
}

Status incr_error(const redisReply& reply) {
  std::string_view text = text_of(reply);
  if (text.find("not an integer") != std::string_view::npos) {
    return Status(StatusCode::kFailedPrecondition, "redis cluster: the value is not an integer");
  }
  if (text.find("overflow") != std::string_view::npos) {
    return Status(StatusCode::kOutOfRange, "redis cluster: incr would overflow");
  }
  return server_error("cluster", reply);
}

void set_command(CommandBuffer& out, std::string_view ns, std::string_view key,
                 std::string_view value, Ttl left, bool only_if_missing) {
  out.begin(3 + (left.expires() ? 2 : 0) + (only_if_missing ? 1 : 0));
  out.arg("SET");
  out.arg(ns, key);
  out.arg(value);
  if (only_if_missing) out.arg("NX");
  if (left.expires()) {
    out.arg("PX");
    out.arg(static_cast<std::int64_t>(left.remaining().count()));
  }
}

void key_command(CommandBuffer& out, std::string_view command, std::string_view ns,
                 std::string_view key) {
  out.begin(2);
  out.arg(command);
  out.arg(ns, key);
}

// "host:port" → host and port (the host may be an IPv6 address: split at the last ':').
bool split_address(std::string_view address, std::string& host, int& port) {
  auto colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  auto digits = address.substr(colon + 1);
  digits = digits.substr(0, digits.find('@'));  // "port@bus-port" in some versions
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  host = std::string(address.substr(0, colon));
  return ec == std::errc() && ptr == digits.data() + digits.size();
}

}  // namespace

Redirect redirect_of(const redisReply& reply) {
  Redirect r;
  if (reply.type != REDIS_REPLY_ERROR) return r;
  std::string_view text = text_of(reply);
  if (text.starts_with("TRYAGAIN") || text.starts_with("CLUSTERDOWN")) {
    r.kind = Redirect::kTryAgain;
    return r;
  }
  bool moved = text.starts_with("MOVED ");
  if (!moved && !text.starts_with("ASK ")) return r;
  auto address = text.substr(text.rfind(' ') + 1);
  if (split_address(address, r.host, r.port)) r.kind = moved ? Redirect::kMoved : Redirect::kAsk;
  return r;
}

// ---- construction ----

Result<std::shared_ptr<RedisClusterBackend>> RedisClusterBackend::make(
    RedisOptions options, RedisClusterOptions cluster) {
  if (options.locations.empty()) {
    return invalid_argument_error(
        "the redis cluster backend needs seed nodes, e.g. \"redis://127.0.0.1:7000\"");
  }
  std::vector<Endpoint> seeds;
  for (const auto& location : options.locations) {
    auto endpoint = parse_url(location);
    if (!endpoint.ok()) return endpoint.status();
    if (endpoint->db != 0) {
      return invalid_argument_error(fmt::format(
          "redis cluster {}: Redis Cluster has only database 0 (got database {}); separate "
          "applications with a key prefix or namespace instead",
          endpoint->describe(), endpoint->db));
    }
    if (endpoint->is_unix()) {
      return invalid_argument_error(fmt::format(
          "redis cluster {}: seed nodes must be TCP (redis://host:port): the nodes announce "
          "TCP addresses",
          endpoint->describe()));
    }
    seeds.push_back(std::move(endpoint).value());
  }
  auto positive = [](std::chrono::milliseconds d) { return d.count() > 0; };
  if (!positive(options.connect_timeout) || !positive(options.io_timeout) ||
      !positive(options.pool_wait) || options.pool_size == 0) {
    return invalid_argument_error(
        "redis cluster: connect_timeout, io_timeout, pool_wait and pool_size must be positive");
  }
  if (options.wait_replicas > 0) {
    return invalid_argument_error("redis cluster: wait_replicas is not supported");
  }
  return std::shared_ptr<RedisClusterBackend>(
      new RedisClusterBackend(std::move(options), cluster, std::move(seeds)));
}

RedisClusterBackend::RedisClusterBackend(RedisOptions options, RedisClusterOptions cluster,
                                         std::vector<Endpoint> seeds)
    : options_(std::move(options)),
      cluster_(cluster),
      clock_(options_.clock != nullptr ? options_.clock : &SystemClock::instance()),
      pool_options_{{options_.connect_timeout, options_.io_timeout},
                    options_.pool_size,
                    options_.pool_wait,
                    options_.retry_after,
                    std::max(1U, options_.down_after_failures)},
      seeds_(std::move(seeds)) {
  info_.name = "redis_cluster";
  info_.outlives_process = true;
  info_.supports_keys = true;
  info_.supports_stats = true;
  info_.key_policy = KeyPolicy::kWarn;
}

Ttl RedisClusterBackend::lifetime(Expiry expiry) const { return Ttl::of(expiry, clock_->now()); }

// ---- routing ----

namespace {

// One exchange with one node: the preamble (ASKING for a migrating slot, READONLY for a
// replica), then the command(s) `build` writes, all in one send; the preamble's replies are
// dropped.
template <class Build>
Result<std::vector<Reply>> exchange_on(Pool& pool, bool asking, bool readonly, std::size_t commands,
                                       Build& build) {
  auto lease = pool.acquire();
  if (!lease.ok()) return lease.status();
  Connection& c = **lease;
  if (asking) c.out().command({"ASKING"});
  if (readonly) c.out().command({"READONLY"});
  build(c.out());
  if (Status s = c.send(); !s.ok()) return s;
  std::vector<Reply> replies;
  replies.reserve(commands);
  for (std::size_t i = 0, n = commands + (asking ? 1 : 0) + (readonly ? 1 : 0); i < n; ++i) {
    auto reply = c.read();
    if (!reply.ok()) return reply.status();
    if (i >= n - commands) replies.push_back(std::move(reply).value());
  }
  return replies;
}

}  // namespace

template <class Build>
Result<std::vector<Reply>> RedisClusterBackend::routed(std::uint16_t slot, Access access,
                                                       Retry retry, std::size_t commands,
                                                       Build&& build) {
  const auto deadline = Clock::now() + options_.io_timeout * kBudgetFactor;
  Pool* target = nullptr;
  bool asking = false, readonly = false, resent = false, tried_replica = false;
  auto pause = kFirstPause;
  for (int redirects = 0;;) {
    if (target == nullptr) {
      auto map = topology();
      if (!map.ok()) return map.status();
      target = pick(**map, slot, access);
      if (target == nullptr) {
        mark_stale();
        return unavailable_error(fmt::format("redis cluster: no node serves slot {}", slot));
      }
      readonly = access == Access::kRead && cluster_.read_from_replicas &&
                 target != (*map)->shards[static_cast<std::size_t>((*map)->shard_of[slot])].primary;
    }
    auto replies = exchange_on(*target, asking, readonly, commands, build);
    if (!replies.ok()) {
      mark_stale();
      Pool* failed = std::exchange(target, nullptr);
      if (readonly) {  // a replica failed: the primary serves the read
        access = Access::kWrite;
        continue;
      }
      // A read whose primary cannot be reached asks one of its replicas: until the cluster
      // promotes one (the node timeout and an election: seconds), it has what was replicated,
      // which is what it will serve once promoted. Writes wait for the promotion.
      if (access == Access::kRead && !tried_replica && replies.status().is_transient()) {
        tried_replica = true;
        auto map = topology();
        Pool* replica = map.ok() ? replica_of(**map, slot) : nullptr;
        if (replica != nullptr) {
          target = replica;
          readonly = true;
          asking = false;
          continue;
        }
      }
      if (retry != Retry::kIdempotent || resent || !replies.status().is_transient()) {
        return replies;
      }
      (void)refresh(false);
      auto map = topology();
      if (!map.ok() || pick(**map, slot, Access::kWrite) == failed) return replies;
      resent = true;
      continue;
    }
    Redirect redirect = redirect_of(*replies->front());
    if (redirect.kind == Redirect::kNone) return replies;
    const redisReply& error = *replies->front();
    if (redirect.kind == Redirect::kTryAgain) {
      if (Clock::now() + pause > deadline) return server_error("cluster", error);
      std::this_thread::sleep_for(pause);
      pause *= 2;
      mark_stale();
      target = nullptr;
      asking = false;
      continue;
    }
    if (++redirects > kMaxRedirects || Clock::now() > deadline) {
      return unavailable_error(
          fmt::format("redis cluster: gave up after {} redirects, the last: {}", kMaxRedirects,
                      text_of(error)));
    }
    if (redirect.kind == Redirect::kMoved) mark_stale();
    target = node(redirect.host, redirect.port);
    asking = redirect.kind == Redirect::kAsk;
    readonly = false;
  }
}

template <class Build>
Result<Reply> RedisClusterBackend::routed_one(std::string_view key, Access access, Retry retry,
                                              Build&& build) {
  auto replies = routed(key_slot(options_.key_namespace, key), access, retry, 1, build);
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

// ---- single keys ----

Result<std::optional<Bytes>> RedisClusterBackend::get(std::string_view key) {
  auto reply = routed_one(key, Access::kRead, Retry::kIdempotent, [&](CommandBuffer& out) {
    key_command(out, "GET", options_.key_namespace, key);
  });
  if (!reply.ok()) return reply.status();
  return optional_bytes("cluster", **reply);
}

Status RedisClusterBackend::set(std::string_view key, std::string_view value, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) return erase(key).status();
  auto reply = routed_one(key, Access::kWrite, Retry::kIdempotent, [&](CommandBuffer& out) {
    set_command(out, options_.key_namespace, key, value, left, false);
  });
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_ERROR) return server_error("cluster", **reply);
  return {};
}

// Not retried after a transport error: SET NX that ran would answer "not stored" the second
// time, for a value it did store.
Result<bool> RedisClusterBackend::add(std::string_view key, std::string_view value, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) {  // stores and at once loses the value exactly when the key is missing
    auto exists = contains(key);
    if (!exists.ok()) return exists.status();
    return !*exists;
  }
  auto reply = routed_one(key, Access::kWrite, Retry::kOnlyIfNotRun, [&](CommandBuffer& out) {
    set_command(out, options_.key_namespace, key, value, left, true);
  });
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_ERROR) return server_error("cluster", **reply);
  return (*reply)->type != REDIS_REPLY_NIL;
}

Result<bool> RedisClusterBackend::touch(std::string_view key, Expiry expiry) {
  const Ttl left = lifetime(expiry);
  if (left.is_missing()) return erase(key);
  const bool never = !left.expires();
  auto replies = routed(key_slot(options_.key_namespace, key), Access::kWrite, Retry::kIdempotent,
                        never ? 2 : 1, [&](CommandBuffer& out) {
                          if (never) {  // PERSIST answers 0 for a missing key and a lasting one
                            key_command(out, "PERSIST", options_.key_namespace, key);
                            key_command(out, "EXISTS", options_.key_namespace, key);
                            return;
                          }
                          out.begin(3);
                          out.arg("PEXPIRE");
                          out.arg(options_.key_namespace, key);
                          out.arg(static_cast<std::int64_t>(left.remaining().count()));
                        });
  if (!replies.ok()) return replies.status();
  auto answer = integer(never ? "EXISTS" : "PEXPIRE", std::move(replies->back()));
  if (!answer.ok()) return answer.status();
  return *answer == 1;
}

Result<bool> RedisClusterBackend::erase(std::string_view key) {
  auto reply = routed_one(key, Access::kWrite, Retry::kIdempotent, [&](CommandBuffer& out) {
    key_command(out, "UNLINK", options_.key_namespace, key);
  });
  auto removed = integer("UNLINK", reply);
  if (!removed.ok()) return removed.status();
  return *removed > 0;
}

Result<Ttl> RedisClusterBackend::ttl(std::string_view key) {
  auto reply = routed_one(key, Access::kRead, Retry::kIdempotent, [&](CommandBuffer& out) {
    key_command(out, "PTTL", options_.key_namespace, key);
  });
  auto ms = integer("PTTL", reply);
  if (!ms.ok()) return ms.status();
  if (*ms == -1) return Ttl::never();
  if (*ms <= 0) return Ttl::missing();
  return Ttl::after(std::chrono::milliseconds(*ms));
}

Result<bool> RedisClusterBackend::contains(std::string_view key) {
  auto reply = routed_one(key, Access::kRead, Retry::kIdempotent, [&](CommandBuffer& out) {
    key_command(out, "EXISTS", options_.key_namespace, key);
  });
  auto exists = integer("EXISTS", reply);
  if (!exists.ok()) return exists.status();
  return *exists == 1;
}

// ---- scripts ----

namespace {

// EVALSHA, then EVAL when the node has not cached the script (NOSCRIPT: it did not run).
template <class Route>
Result<Reply> run_cluster_script(Route&& route, const Script& script, std::string_view ns,
                                 std::string_view key, std::string_view argument) {
  for (std::string_view command : {"EVALSHA", "EVAL"}) {
    auto reply = route([&](CommandBuffer& out) {
      out.begin(5);
      out.arg(command);
      out.arg(command == "EVAL" ? script.source : script.sha1);
      out.arg("1");
      out.arg(ns, key);
      out.arg(argument);
    });
    if (!reply.ok() || !is_error(**reply, "NOSCRIPT")) return reply;
  }
  return internal_error("redis cluster: EVAL answered NOSCRIPT");
}

}  // namespace

Result<std::int64_t> RedisClusterBackend::incr(std::string_view key, std::int64_t delta) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, delta).ptr;
  auto reply = run_cluster_script(
      [&](auto build) { return routed_one(key, Access::kWrite, Retry::kOnlyIfNotRun, build); },
      kIncrScript, options_.key_namespace, key,
      std::string_view(digits, static_cast<std::size_t>(end - digits)));
  if (!reply.ok()) return reply.status();
  const redisReply& r = **reply;
  switch (r.type) {
    case REDIS_REPLY_STRING: {
      std::int64_t value = 0;
      auto [ptr, ec] = std::from_chars(r.str, r.str + r.len, value);
      if (ec != std::errc() || ptr != r.str + r.len) return unexpected_reply("cluster", "EVAL", r);
      return value;
    }
    case REDIS_REPLY_NIL:
      return not_found_error(fmt::format("key '{}' not found", key));
    case REDIS_REPLY_ERROR:
      return incr_error(r);
    default:
      return unexpected_reply("cluster", "EVALSHA", r);
  }
}

Result<bool> RedisClusterBackend::erase_if_value(std::string_view key, std::string_view expected) {
  auto reply = run_cluster_script(
      [&](auto build) { return routed_one(key, Access::kWrite, Retry::kOnlyIfNotRun, build); },
      kEraseIfValueScript, options_.key_namespace, key, expected);
  if (!reply.ok()) return reply.status();
  if ((*reply)->type != REDIS_REPLY_INTEGER) return unexpected_reply("cluster", "EVAL", **reply);
  return (*reply)->integer == 1;
}

}  // namespace cachekit::redis_internal

namespace cachekit {

Result<std::shared_ptr<Backend>> make_redis_cluster_backend(RedisOptions options,
                                                            RedisClusterOptions cluster) {
  auto backend = redis_internal::RedisClusterBackend::make(std::move(options), cluster);
  if (!backend.ok()) return backend.status();
  return std::shared_ptr<Backend>(std::move(backend).value());
}

}  // namespace cachekit
