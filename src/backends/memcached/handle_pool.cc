#include "backends/memcached/handle_pool.h"

#include <string>

namespace cachekit::memcached_internal {
namespace {

using Pool = backend_detail::BoundedPool<memcached_st, HandleFree>;

Pool::Options pool_options(unsigned size, std::chrono::milliseconds wait) {
  Pool::Options o;
  o.max_size = size == 0 ? 1 : size;
  o.wait = wait;
  o.exhausted_message = "all " + std::to_string(o.max_size) +
                        " memcached connections stayed busy for " + std::to_string(wait.count()) +
                        " ms (raise pool_size?)";
  return o;
}

}  // namespace

HandlePool::HandlePool(memcached_st* master, unsigned size, std::chrono::milliseconds wait)
    : master_(master),
      pool_(
          [this](Pool::Clock::time_point) -> Result<Pool::Item> {
            // Cloning under a lock keeps the master single-threaded; it happens `size` times
            // at most.
            std::lock_guard lock(clone_mutex_);
            memcached_st* handle = memcached_clone(nullptr, master_.get());
            if (handle == nullptr) return internal_error("memcached_clone failed (out of memory?)");
            return Pool::Item(handle);
          },
          pool_options(size, wait)) {}

}  // namespace cachekit::memcached_internal
