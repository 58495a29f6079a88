#include "server/handler_pool.h"

#include <exception>

#include "core/log.h"

namespace cachekit::server::detail {

HandlerPool::HandlerPool(std::size_t threads, std::size_t queue_capacity)
    : capacity_(queue_capacity) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

HandlerPool::~HandlerPool() { stop(); }

bool HandlerPool::try_submit(Task task) {
  {
    std::lock_guard lock(mutex_);
    // Idle threads will each take one queued task at once, so they extend the bound: the queue
    // only holds `capacity_` tasks that really have to wait.
    if (stopping_ || queue_.size() >= capacity_ + idle_) return false;
    queue_.push_back(std::move(task));
  }
  ready_.notify_one();
  return true;
}

void HandlerPool::stop() {
  std::lock_guard joining(stop_mutex_);  // two concurrent stop()s must not join one thread twice
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::size_t HandlerPool::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

std::size_t HandlerPool::busy() const {
  std::lock_guard lock(mutex_);
  return busy_;
}

void HandlerPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ++idle_;
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    --idle_;
    // Accepted tasks are drained even when stopping: each one is a client waiting for an
    // answer, and a graceful stop promises to finish in-flight requests.
    if (queue_.empty()) return;
    Task task = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      cachekit::detail::logger()->error("handler pool: task threw: {}", e.what());
    } catch (...) {
      cachekit::detail::logger()->error("handler pool: task threw a non-exception");
    }
    task = nullptr;  // release captures (and the io work they hold) before taking the lock
    lock.lock();
    --busy_;
  }
}

}  // namespace cachekit::server::detail
