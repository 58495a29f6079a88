#pragma once
// The Cache's background refreshes run here: a small bounded queue and at most kThreads
// threads, started on first use (most caches never refresh in the background) and joined by
// the destructor, so no refresh outlives its Cache. A full queue refuses a task: the caller
// keeps serving its stale value and a later reader asks again.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace cachekit::detail {

class RefreshExecutor {
 public:
  static constexpr std::size_t kThreads = 2;
  static constexpr std::size_t kCapacity = 256;

  RefreshExecutor() = default;
  RefreshExecutor(const RefreshExecutor&) = delete;
  RefreshExecutor& operator=(const RefreshExecutor&) = delete;
  // Drops the tasks not started yet and waits for the running ones.
  ~RefreshExecutor() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
      queue_.clear();
    }
    ready_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  // False when the queue is full or the executor is stopping (the task is destroyed).
  bool submit(std::function<void()> task) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_ || queue_.size() >= kCapacity) return false;
      queue_.push_back(std::move(task));
      if (threads_.size() < kThreads && idle_ == 0) threads_.emplace_back([this] { run(); });
    }
    ready_.notify_one();
    return true;
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (stopping_) return;
      std::function<void()> task = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      task();  // tasks catch their own exceptions
      task = nullptr;
      lock.lock();
    }
  }

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  std::size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace cachekit::detail
