#pragma once
// MemcachedBackend, the class behind make_memcached_backend (cachekit/backends/memcached.h).
// memcached.cc has the plain storage calls and the factory; incr.cc and ttl_and_stats.cc have
// the calls that need the meta-protocol side channel.

#include <libmemcached/memcached.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "backends/memcached/exptime.h"
#include "backends/memcached/handle_pool.h"
#include "backends/memcached/meta_client.h"
#include "backends/memcached/server_address.h"
#include "backends/memcached/server_health.h"
#include "cachekit/backends/memcached.h"

namespace cachekit::memcached_internal {

class MemcachedBackend final : public Backend {
 public:
  MemcachedBackend(const MemcachedOptions& options, std::vector<ServerAddress> servers,
                   memcached_st* master);

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }
  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<std::vector<std::optional<Bytes>>> get_many(
      std::span<const std::string_view> keys) override;
  Result<std::vector<std::size_t>> set_many(std::span<const KeyValue> items,
                                            Expiry expiry) override;
  Result<StatPairs> stats() override;

 private:
  static constexpr std::size_t kNoServer = static_cast<std::size_t>(-1);

  // Which configured server `key` goes to with this handle's ring (kNoServer if none is live).
  std::size_t server_of(memcached_st* handle, std::string_view key) const;
  std::size_t index_of(const memcached_st* handle, const memcached_instance_st* instance) const;
  // kUnavailable at once when the key's server is being skipped (see ServerHealth).
  Status admit(memcached_st* handle, std::string_view key);
  // Feeds a call's outcome to ServerHealth.
  void observe(std::size_t server, bool timed_out);
  void observe(memcached_st* handle, std::string_view key, memcached_return_t rc);
  // Runs one libmemcached call on the key's server, once more if it found the server dead.
  template <class Call>
  memcached_return_t call(memcached_st* handle, std::string_view key, Call&& call);
  Status failure(memcached_st* handle, memcached_return_t rc, std::string_view operation,
                 std::string_view key, std::size_t value_size = 0) const;
  // Stores one item on a borrowed handle; removes the old value when the store refuses it.
  Status store(memcached_st* handle, std::string_view key, std::string_view value,
               std::int64_t exptime);
  [[nodiscard]] std::optional<std::int64_t> exptime_of(Expiry expiry) const;

  Result<std::int64_t> incr_native(std::size_t server, std::string_view key, std::int64_t delta,
                                   bool& fall_back);
  Result<std::int64_t> incr_by_cas(std::size_t server, std::string_view key, std::int64_t delta);
  Status meta_failure(std::size_t server, const Status& status);

  BackendInfo info_;
  const Clock* clock_;
  std::chrono::milliseconds cas_patience_;  // how long a CAS incr keeps retrying lost races
  std::vector<ServerAddress> servers_;
  HandlePool pool_;
  ServerHealth health_;
  MetaClient meta_;
};

template <class Call>
memcached_return_t MemcachedBackend::call(memcached_st* handle, std::string_view key, Call&& call) {
  memcached_return_t rc = call();
  // The handle has just ejected the key's server and rebuilt its ring: nothing was sent, and the
  // same call now goes to a live server.
  if (rc == MEMCACHED_SERVER_MARKED_DEAD) rc = call();
  observe(handle, key, rc);
  return rc;
}

// True when `rc` means the server received the request and answered it (hit, miss, refusal),
// as opposed to a transport failure or a server that was never tried.
bool server_answered(memcached_return_t rc) noexcept;

}  // namespace cachekit::memcached_internal
