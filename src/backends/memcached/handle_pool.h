#pragma once
// HandlePool: a bounded pool of libmemcached handles (memcached_st), which are not thread-safe.
//
// Why not libmemcachedutil's memcached_pool: its bounded wait computes the deadline as
// time(NULL) + whole seconds with the caller's nanoseconds pasted in (pool.cc in 1.1.4), so a
// 200 ms wait is anything from 0 to 1.2 s; and it wakes waiters only when the pool goes from
// empty to one free handle. This pool is the same idea — clones of one configured master,
// created on demand up to `size`, reused last-in first-out so warm connections stay warm —
// with an exact wait (the shared backends/common/bounded_pool.h). Per-thread clones were the
// alternative; they make the number of connections grow with the number of threads, which is
// what a bounded pool exists to prevent.
//
// Each handle keeps its own connections and its own view of failed servers (libmemcached's
// ejection state lives in the handle), so every handle discovers a dead server once.

#include <libmemcached/memcached.h>

#include <chrono>
#include <memory>
#include <mutex>

#include "backends/common/bounded_pool.h"
#include "cachekit/status.h"

namespace cachekit::memcached_internal {

struct HandleFree {
  void operator()(memcached_st* handle) const noexcept { memcached_free(handle); }
};

class HandlePool {
 public:
  // A borrowed handle (get()), returned to the pool when the Lease goes.
  using Lease = backend_detail::BoundedPool<memcached_st, HandleFree>::Lease;

  // Takes ownership of `master`, which is only ever cloned, never used for I/O.
  HandlePool(memcached_st* master, unsigned size, std::chrono::milliseconds wait);
  HandlePool(const HandlePool&) = delete;
  HandlePool& operator=(const HandlePool&) = delete;

  // kDeadlineExceeded when no handle frees up within the wait; kInternal if cloning fails.
  Result<Lease> acquire() { return pool_.acquire(); }
  // The master, for read-only questions (server list) that need no connection.
  [[nodiscard]] const memcached_st* master() const noexcept { return master_.get(); }

 private:
  std::unique_ptr<memcached_st, HandleFree> master_;  // outlives the clones in pool_
  std::mutex clone_mutex_;                            // keeps the master single-threaded
  backend_detail::BoundedPool<memcached_st, HandleFree> pool_;
};

}  // namespace cachekit::memcached_internal
