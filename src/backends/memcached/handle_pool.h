#pragma once
// HandlePool: a bounded pool of libmemcached handles (memcached_st), which are not thread-safe.
//
// Why not libmemcachedutil's memcached_pool: its bounded wait computes the deadline as
// time(NULL) + whole seconds with the caller's nanoseconds pasted in (pool.cc in 1.1.4), so a
// 200 ms wait is anything from 0 to 1.2 s; and it wakes waiters only when the pool goes from
// empty to one free handle. This pool is the same idea — clones of one configured master,
// created on demand up to `size`, reused last-in first-out so warm connections stay warm —
// with an exact wait. Per-thread clones were the alternative; they make the number of
// connections grow with the number of threads, which is what a bounded pool exists to prevent.
//
// Each handle keeps its own connections and its own view of failed servers (libmemcached's
// ejection state lives in the handle), so every handle discovers a dead server once.

#include <libmemcached/memcached.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "cachekit/status.h"

namespace cachekit::memcached_internal {

class HandlePool {
 public:
  // Takes ownership of `master`, which is only ever cloned, never used for I/O.
  HandlePool(memcached_st* master, unsigned size, std::chrono::milliseconds wait);
  ~HandlePool();
  HandlePool(const HandlePool&) = delete;
  HandlePool& operator=(const HandlePool&) = delete;

  // A borrowed handle, returned to the pool when the Lease goes.
  class Lease {
   public:
    Lease(HandlePool* pool, memcached_st* handle) : pool_(pool), handle_(handle) {}
    Lease(Lease&& o) noexcept : pool_(o.pool_), handle_(std::exchange(o.handle_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (handle_ != nullptr) pool_->release(handle_);
    }
    [[nodiscard]] memcached_st* get() const noexcept { return handle_; }

   private:
    HandlePool* pool_;
    memcached_st* handle_;
  };

  // kDeadlineExceeded when no handle frees up within the wait; kInternal if cloning fails.
  Result<Lease> acquire();
  // The master, for read-only questions (server list) that need no connection.
  [[nodiscard]] const memcached_st* master() const noexcept { return master_; }

 private:
  void release(memcached_st* handle);

  memcached_st* master_;
  unsigned size_;
  std::chrono::milliseconds wait_;
  std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<memcached_st*> idle_;
  unsigned created_ = 0;
};

}  // namespace cachekit::memcached_internal
