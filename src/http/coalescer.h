#pragma once
// Request coalescing for the page cache (nginx's proxy_cache_lock, Varnish's waiting list):
// concurrent misses for one page in this process make one handler call.
//
// The first miss for a key becomes the leader and runs the handler; later misses join its
// Flight and wait (bounded) for the Outcome. The leader publishes either a response that may
// be shared — one the cache could store, with the request-header values it was selected by —
// or nothing, in which case each waiter looks the page up again and, failing that, runs the
// handler itself, concurrently with the others (never one after another: that is Varnish's
// waiting-list serialization, varnish-cache#3461). A key whose last outcome was not shareable
// is remembered for a while (hit-for-pass) so the next wave does not queue behind a leader
// whose answer it cannot use.
//
// Keys are opaque here; the page cache makes them per URI, method and request class.
//
// Thread-safe. Waits use the steady clock (real time) — coalescing bounds latency, not
// freshness, so it does not follow an injected test Clock. The hit-for-pass memo does use the
// page cache's Clock.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cachekit/clock.h"
#include "cachekit/http/message.h"

namespace cachekit::http::detail {

struct Outcome {
  std::optional<Response> response;  // shareable, without this cache's Cache-Status member
  std::vector<std::string> vary_names;
  std::string selecting;  // selecting_values(leader's request, vary_names)
  // The status waiters serve `response` under (a stale page standing in for the leader's
  // error); nullopt: the leader's miss, `collapsed`.
  std::optional<CacheStatus> status{};
};

class Coalescer {
 public:
  struct Flight {
    std::mutex mutex;
    std::condition_variable done_cv;
    bool done = false;
    Outcome outcome;  // immutable once done
  };
  struct Ticket {
    std::shared_ptr<Flight> flight;
    bool leader = false;
  };

  // Joins the flight for `key`, creating it (and becoming its leader) when there is none.
  Ticket join(const std::string& key);
  // The leader's result: wakes every waiter and retires the flight, so the next miss for `key`
  // starts a new one.
  void publish(const std::string& key, const Ticket& ticket, Outcome outcome);
  // A waiter's wait: the outcome, or nullopt when the leader did not finish within `limit`.
  std::optional<Outcome> wait(const Ticket& ticket, std::chrono::milliseconds limit);
  // How many flights have finished (a count that only grows). A miss notes it before reading
  // the store; a different value later means some flight may have stored a page since.
  [[nodiscard]] std::uint64_t finished() const noexcept {
    return finished_.load(std::memory_order_acquire);
  }
  // How many callers are inside wait() now.
  [[nodiscard]] std::size_t waiting() const noexcept {
    return waiting_.load(std::memory_order_relaxed);
  }

  // Hit-for-pass memo: was `key`'s last outcome unshareable, less than kPassFor ago?
  bool passing(const std::string& key, TimePoint now);
  void mark_passing(const std::string& key, TimePoint now);

  static constexpr std::chrono::seconds kPassFor{30};
  static constexpr std::size_t kMaxPassing = 4096;

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Flight>> flights_;
  std::unordered_map<std::string, TimePoint> passing_until_;
  std::atomic<std::size_t> waiting_{0};
  std::atomic<std::uint64_t> finished_{0};
};

// Publishes a failed outcome (nothing to share) if the leader leaves without publishing —
// the handler threw — so waiters never wait out their full limit for a dead leader.
class LeaderGuard {
 public:
  LeaderGuard(Coalescer& coalescer, std::string key, Coalescer::Ticket ticket)
      : coalescer_(coalescer), key_(std::move(key)), ticket_(std::move(ticket)) {}
  ~LeaderGuard() {
    if (!published_) coalescer_.publish(key_, ticket_, Outcome{});
  }
  LeaderGuard(const LeaderGuard&) = delete;
  LeaderGuard& operator=(const LeaderGuard&) = delete;
  void publish(Outcome outcome) {
    published_ = true;
    coalescer_.publish(key_, ticket_, std::move(outcome));
  }

 private:
  Coalescer& coalescer_;
  std::string key_;
  Coalescer::Ticket ticket_;
  bool published_ = false;
};

}  // namespace cachekit::http::detail
