#pragma once
// HandlerPool: the fixed set of threads that run user handlers, with a bounded queue.
//
// try_submit() never blocks and never grows the queue past its bound: a full pool answers
// false and the server turns that into 503 + Retry-After. The bound counts waiting tasks; a
// task that finds an idle thread is always accepted, so a capacity of 0 means "hand off to an
// idle thread or refuse". Thread-safe.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace cachekit::server::detail {

class HandlerPool {
 public:
  using Task = std::function<void()>;

  // Starts `threads` (at least 1) threads.
  HandlerPool(std::size_t threads, std::size_t queue_capacity);
  ~HandlerPool();  // stop()
  HandlerPool(const HandlerPool&) = delete;
  HandlerPool& operator=(const HandlerPool&) = delete;

  // Queues `task`; true when accepted, false when the queue is full or the pool stopped.
  // Tasks must not throw (one that does is logged and dropped).
  bool try_submit(Task task);
  // Runs every task already accepted, then joins the threads. Idempotent; never call it from a
  // pool thread.
  void stop();

  [[nodiscard]] std::size_t queued() const;
  [[nodiscard]] std::size_t busy() const;
  [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }

 private:
  void work();

  const std::size_t capacity_;
  std::mutex stop_mutex_;
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Task> queue_;
  std::size_t idle_ = 0;
  std::size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cachekit::server::detail
