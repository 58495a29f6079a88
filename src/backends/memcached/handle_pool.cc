#include "backends/memcached/handle_pool.h"

#include <string>

namespace cachekit::memcached_internal {

HandlePool::HandlePool(memcached_st* master, unsigned size, std::chrono::milliseconds wait)
    : master_(master), size_(size == 0 ? 1 : size), wait_(wait) {
  idle_.reserve(size_);
}

HandlePool::~HandlePool() {
  // Leases never outlive the backend that owns the pool, so every handle is idle here.
  for (memcached_st* handle : idle_) memcached_free(handle);
  memcached_free(master_);
}

Result<HandlePool::Lease> HandlePool::acquire() {
  std::unique_lock lock(mutex_);
  if (idle_.empty() && created_ < size_) {
    // Cloning under the lock keeps the master single-threaded; it happens size_ times at most.
    memcached_st* handle = memcached_clone(nullptr, master_);
    if (handle == nullptr) return internal_error("memcached_clone failed (out of memory?)");
    ++created_;
    return Lease(this, handle);
  }
  if (!freed_.wait_for(lock, wait_, [&] { return !idle_.empty(); })) {
    return Status(StatusCode::kDeadlineExceeded,
                  "all " + std::to_string(size_) + " memcached connections stayed busy for " +
                      std::to_string(wait_.count()) + " ms (raise pool_size?)");
  }
  memcached_st* handle = idle_.back();
  idle_.pop_back();
  return Lease(this, handle);
}

void HandlePool::release(memcached_st* handle) {
  {
    std::lock_guard lock(mutex_);
    idle_.push_back(handle);
  }
  freed_.notify_one();
}

}  // namespace cachekit::memcached_internal
