#include "http/refresher.h"

namespace cachekit::http::detail {

Refresher::~Refresher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();  // a refresh nobody will read is not worth waiting for
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

bool Refresher::submit(std::string key, std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= kMaxQueued || keys_.contains(key)) return false;
    keys_.insert(key);
    queue_.emplace_back(std::move(key), std::move(task));
    // Threads start lazily and stay: a refresh costs a handler call, never a thread start.
    if (threads_.size() < kThreads && threads_.size() < keys_.size()) {
      threads_.emplace_back([this] { work(); });
    }
  }
  ready_.notify_one();
  return true;
}

bool Refresher::claim(const std::string& key) {
  std::lock_guard lock(mutex_);
  return keys_.insert(key).second;
}

void Refresher::release(const std::string& key) {
  std::lock_guard lock(mutex_);
  keys_.erase(key);
}

std::size_t Refresher::pending() const {
  std::lock_guard lock(mutex_);
  return keys_.size();
}

void Refresher::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping
    auto [key, task] = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    task();
    lock.lock();
    keys_.erase(key);
  }
}

}  // namespace cachekit::http::detail
