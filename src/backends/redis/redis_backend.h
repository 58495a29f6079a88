#pragma once
// The Redis Backend class, shared by the files of the Redis backend (redis.cc: the key
// operations and the factory; keyspace.cc: keys, clear, erase_pattern, stats; locks.cc:
// try_lock, unlock). Users see only
// include/cachekit/backends/redis.h.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "backends/redis/connection.h"
#include "backends/redis/pool.h"
#include "backends/redis/sentinel.h"
#include "cachekit/backend.h"
#include "cachekit/backends/redis.h"

namespace cachekit::redis_internal {

// A Lua script run by EVALSHA, with EVAL as the fallback when the server has not cached it
// (after a restart or SCRIPT FLUSH).
struct Script {
  std::string_view sha1;
  std::string_view source;
};

class RedisBackend final : public Backend {
 public:
  static Result<std::shared_ptr<RedisBackend>> make(RedisOptions options);

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  // One compare-and-delete script (the unlock script): atomic on the server.
  Result<bool> erase_if_value(std::string_view key, std::string_view expected) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<bool> contains(std::string_view key) override;
  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override;
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items,
                                            Expiry expiry) override;
  Result<std::size_t> erase_many(std::span<const std::string_view> keys) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;
  // GET and PTTL in one pipeline: one round trip.
  Result<std::optional<StoredEntry>> get_entry(std::string_view key) override;
  // CLIENT TRACKING in broadcast mode on the primary (tracking.h).
  Result<std::unique_ptr<ChangeFeed>> watch_changes(ChangeListener& listener) override;
  // GETs pipelined on a connection the loop drives (async_reads.h); none behind Sentinel,
  // whose primary moves: the blocking path follows it.
  std::unique_ptr<AsyncReads> async_reads(boost::asio::io_context& loop) override;

  Result<std::size_t> erase_pattern(std::string_view pattern);
  Result<std::optional<std::string>> try_lock(std::string_view key, std::chrono::milliseconds ttl);
  Result<bool> unlock(std::string_view key, std::string_view token);

 private:
  RedisBackend(RedisOptions options, std::vector<Endpoint> endpoints,
               std::optional<SentinelLocation> sentinel);

  template <class F>
  using Outcome = std::invoke_result_t<F&, Connection&>;

  // The servers calls go to. Swapped whole when the sentinels name a new primary; a call
  // keeps the set it started with (and so its pools) alive until it returns.
  struct Nodes {
    std::vector<std::shared_ptr<Pool>> pools;  // the primary first; empty: none known yet
  };
  struct NodesView {
    std::shared_ptr<const Nodes> keep;  // held only when the set can change (Sentinel)
    const Nodes* nodes;
    const Nodes* operator->() const noexcept { return nodes; }
  };
  // Without Sentinel the set never changes after construction: no lock, no reference count.
  [[nodiscard]] NodesView nodes() const {
    if (!follows_sentinel_) return {nullptr, nodes_.get()};
    std::lock_guard lock(nodes_mutex_);
    return {nodes_, nodes_.get()};
  }

  // Runs `exchange` (build commands, send, read the replies) on a primary connection; then,
  // when `wait` and wait_replicas are set and the exchange succeeded, WAITs for the replicas.
  template <class F>
  Outcome<F> on_primary(F&& exchange, bool wait = true) {
    NodesView view = nodes();
    return primary_call(*view.nodes, exchange, wait);
  }
  // Runs a read on the next replica, falling back to the primary when it fails transiently.
  template <class F>
  Outcome<F> on_reader(F&& exchange) {
    NodesView view = nodes();
    const auto& pools = view->pools;
    if (pools.size() > 1) {
      std::size_t n = next_replica_.fetch_add(1, std::memory_order_relaxed);
      auto result = run_on(*pools[1 + n % (pools.size() - 1)], exchange);
      if (result.ok() || !result.status().is_transient()) return result;
      (void)failed(result.status());
    }
    return primary_call(*view.nodes, exchange, false);
  }
  template <class F>
  Outcome<F> primary_call(const Nodes& nodes, F& exchange, bool wait) {
    if (nodes.pools.empty()) return failed(no_primary_error());
    auto lease = nodes.pools.front()->acquire();
    if (!lease.ok()) return failed(lease.status());
    Outcome<F> result = exchange(**lease);
    if (!result.ok()) return failed(result.status());
    if (wait && options_.wait_replicas > 0) wait_for_replicas(**lease);
    return result;
  }
  template <class F>
  static Outcome<F> run_on(Pool& pool, F& exchange) {
    auto lease = pool.acquire();
    if (!lease.ok()) return lease.status();
    return exchange(**lease);
  }
  // With Sentinel, a transient failure (the server gone, READONLY from a demoted primary)
  // asks the watcher to find the primary again. Returns `status`.
  Status failed(Status status);
  [[nodiscard]] Status no_primary_error() const;
  // Takes the servers the sentinels named (on the watcher's thread).
  void follow(const Discovery& found);
  // The sentinel.* entries of stats() (none without Sentinel).
  void add_sentinel_stats(StatPairs& out) const;

  void wait_for_replicas(Connection& connection);
  // What `expiry` leaves as of now: missing when already expired, never, or the time left.
  [[nodiscard]] Ttl lifetime(Expiry expiry) const;
  // The glob that matches every key of this backend's namespace followed by `pattern`.
  [[nodiscard]] std::string namespaced_glob(std::string_view pattern) const;
  // SCAN over `glob` with UNLINK of each batch; how many keys were removed.
  Result<std::size_t> scan_and_unlink(std::string_view glob);
  Status flush_db();

  RedisOptions options_;
  const Clock* clock_;
  BackendInfo info_;
  Endpoint primary_;  // where the change feed connects (behind Sentinel: nodes() says)
  PoolOptions pool_options_;
  const bool follows_sentinel_;
  std::optional<SentinelLocation> sentinel_;
  mutable std::mutex nodes_mutex_;
  std::shared_ptr<const Nodes> nodes_;
  std::atomic<std::size_t> next_replica_{0};
  std::atomic<std::uint64_t> primaries_followed_{0};  // primary changes after the first
  std::unique_ptr<SentinelWatcher> watcher_;          // last: its thread stops before the rest goes
};

// Sends what the connection's buffer holds and reads one reply (an error reply → Status).
Result<Reply> round_trip(Connection& connection);
// EVALSHA, or EVAL when the server answers NOSCRIPT. The reply may be an error reply.
Result<Reply> run_script(Connection& connection, const Script& script, std::string_view key_head,
                         std::string_view key, std::string_view argument);
// For replies of an unexpected type (a protocol mismatch).
Status unexpected_reply(std::string_view where, std::string_view command, const redisReply& reply);
// `backend` as the Redis backend, or kInvalidArgument naming what it is instead.
Result<RedisBackend*> as_redis_backend(Backend& backend);

}  // namespace cachekit::redis_internal
