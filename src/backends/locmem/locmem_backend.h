#pragma once
// LocmemBackend, the class behind make_locmem_backend (cachekit/backends/locmem.h): a sharded,
// bounded, least-recently-used store in the process's memory. shard.h holds one shard (its
// hash table, LRU list and bounds); locmem.cc the calls, eviction and the factory. Users see
// only include/cachekit/backends/locmem.h.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/locmem/shard.h"
#include "cachekit/backend.h"
#include "cachekit/backends/locmem.h"
#include "cachekit/clock.h"

namespace cachekit::locmem_internal {

class LocmemBackend final : public Backend {
 public:
  explicit LocmemBackend(const LocmemOptions& o);
  ~LocmemBackend() override;

  [[nodiscard]] const BackendInfo& info() const noexcept override { return info_; }

  Result<std::optional<Bytes>> get(std::string_view key) override;
  Status set(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> add(std::string_view key, std::string_view value, Expiry expiry) override;
  Result<bool> touch(std::string_view key, Expiry expiry) override;
  Result<bool> erase(std::string_view key) override;
  Result<bool> contains(std::string_view key) override;
  Result<std::int64_t> incr(std::string_view key, std::int64_t delta) override;
  Status clear() override;
  Result<Ttl> ttl(std::string_view key) override;
  Result<std::vector<std::string>> keys(std::string_view pattern) override;
  Result<StatPairs> stats() override;

 private:
  // Where a key lives and the time of the call, computed before any lock is taken. The high
  // half of the hash picks the shard, the low half the bucket, so the two stay independent.
  // The bucket's likely cache miss is started here, to overlap the clock read and the lock.
  struct Target {
    std::uint64_t hash;
    Shard& shard;
    std::uint64_t now;
  };
  [[nodiscard]] Target target(std::string_view key) const noexcept;

  static Item** find_live(const Target& t, std::string_view key, Graveyard& dead) noexcept;

  static Status check_sizes(std::string_view key, std::string_view value);
  static Status key_too_long(std::string_view key);
  static bool too_big_for(const Shard& s, std::string_view key, std::string_view value);
  static Status too_big_error(const Shard& s, std::string_view key, std::string_view value);
  static Status out_of_memory();

  Result<std::int64_t> incr_locked(const Target& t, Item* fresh, std::int64_t delta,
                                   Graveyard& dead, bool& dump_others);

  void make_room(Shard& s, std::size_t charge, Graveyard& dead, bool& dump_others);

  void clear_except(const Shard* skip);

  BackendInfo info_;
  LocmemOptions options_;
  const Clock* clock_;
  unsigned shard_count_;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace cachekit::locmem_internal
