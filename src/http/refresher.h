#pragma once
// Refresher: the page cache's small bounded executor for background refreshes
// (stale-while-revalidate). At most kThreads threads, started on the first task (a PageCache
// that never serves stale never starts one), at most kMaxQueued tasks waiting, and at most one
// task per key queued or running: a key already being refreshed is not refreshed twice, and a
// full queue drops the task (the next stale reader asks again). The destructor drops the tasks
// still queued, lets the running ones finish and joins the threads: no thread outlives it.
//
// Thread-safe.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <utility>
#include <vector>

namespace cachekit::http::detail {

class Refresher {
 public:
  static constexpr std::size_t kThreads = 2;
  static constexpr std::size_t kMaxQueued = 256;

  Refresher() = default;
  ~Refresher();
  Refresher(const Refresher&) = delete;
  Refresher& operator=(const Refresher&) = delete;

  // Queues `task` under `key`. False (and `task` dropped) when `key` is already queued or
  // running, the queue is full, or the Refresher is stopping. `task` must not throw.
  bool submit(std::string key, std::function<void()> task);
  // Marks `key` as being refreshed by the caller's own thread: false when it already is
  // (queued, running, or claimed). release() ends the claim.
  bool claim(const std::string& key);
  void release(const std::string& key);
  // Tasks queued or running now.
  [[nodiscard]] std::size_t pending() const;

 private:
  void work();

  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::pair<std::string, std::function<void()>>> queue_;
  std::unordered_set<std::string> keys_;  // queued or running
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

}  // namespace cachekit::http::detail
