// Locks on the Redis backend that expire by themselves (SET NX PX), released by an atomic
// compare-and-delete script so a holder whose lock expired cannot release its successor's;
// and the public redis::try_lock / redis::unlock of cachekit/backends/redis.h.
#include <fmt/format.h>

#include <random>

#include "backends/redis/redis_backend.h"

namespace cachekit {
namespace redis_internal {
namespace {

constexpr Script kUnlockScript{
    "e8022015b1db2126f2af52e2659c302bb86e2557",
    "if redis.call('GET',KEYS[1])==ARGV[1] then return redis.call('DEL',KEYS[1]) "
    "else return 0 end"};

// 128 random bits as hex: a lock token nobody else can guess or collide with.
std::string random_token() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", generator(), generator());
}

}  // namespace

Result<std::optional<std::string>> RedisBackend::try_lock(std::string_view key,
                                                          std::chrono::milliseconds ttl) {
  using Token = std::optional<std::string>;
  if (ttl.count() <= 0) return invalid_argument_error("redis: a lock needs a positive ttl");
  return on_primary([&](Connection& c) -> Result<Token> {
    std::string token = random_token();
    c.out().begin(6);
    c.out().arg("SET");
    c.out().arg(options_.key_namespace, key);
    c.out().arg(token);
    c.out().arg("NX");
    c.out().arg("PX");
    c.out().arg(static_cast<std::int64_t>(ttl.count()));
    auto reply = round_trip(c);
    if (!reply.ok()) return reply.status();
    if ((*reply)->type == REDIS_REPLY_NIL) return Token();
    return Token(std::move(token));
  });
}

Result<bool> RedisBackend::unlock(std::string_view key, std::string_view token) {
  return on_primary([&](Connection& c) -> Result<bool> {
    auto reply = run_script(c, kUnlockScript, options_.key_namespace, key, token);
    if (!reply.ok()) return reply.status();
    if ((*reply)->type != REDIS_REPLY_INTEGER) return unexpected_reply(c.where(), "EVAL", **reply);
    return (*reply)->integer == 1;
  });
}

Result<bool> RedisBackend::erase_if_value(std::string_view key, std::string_view expected) {
  return unlock(key, expected);
}

}  // namespace redis_internal

namespace redis {

Result<std::optional<std::string>> try_lock(Backend& backend, std::string_view key,
                                            std::chrono::milliseconds ttl) {
  auto redis = redis_internal::as_redis_backend(backend);
  if (!redis.ok()) return redis.status();
  return (*redis)->try_lock(key, ttl);
}

Result<bool> unlock(Backend& backend, std::string_view key, std::string_view token) {
  auto redis = redis_internal::as_redis_backend(backend);
  if (!redis.ok()) return redis.status();
  return (*redis)->unlock(key, token);
}

}  // namespace redis
}  // namespace cachekit
