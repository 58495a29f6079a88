#pragma once
// The flight table behind Cache::get_or_set's single-flight: one entry per final key that some
// thread is loading right now. The first caller to miss a key becomes its leader and runs the
// loader; the others find the entry and wait on its shared_future for the leader's value (or
// its exception), bounded by CacheOptions::collapse_wait. The table is touched only on a miss,
// so a hit path never takes its mutex; a small mutex-guarded map is enough because a miss costs
// a store round trip and a loader call anyway.

#include <exception>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "cachekit/bytes.h"

namespace cachekit::detail {

// What a leader hands its waiters: the value it returns (nullopt when it has none to share,
// e.g. a typed value its codec could not encode: the waiters then load it themselves).
using FlightValue = std::optional<Bytes>;

class FlightTable {
 public:
  // The leader's end of a flight. publish() or fail() wakes every waiter; a ticket destroyed
  // without either (an exception outside the loader) wakes them with an error.
  class Ticket {
   public:
    Ticket(FlightTable* table, std::string key) : table_(table), key_(std::move(key)) {}
    Ticket(Ticket&& other) noexcept
        : table_(std::exchange(other.table_, nullptr)),
          key_(std::move(other.key_)),
          promise_(std::move(other.promise_)) {}
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() {
      if (table_ != nullptr) {
        fail(std::make_exception_ptr(std::runtime_error("the loading thread gave up")));
      }
    }

    void publish(FlightValue value) {
      if (table_ == nullptr) return;
      std::exchange(table_, nullptr)->remove(key_);
      promise_.set_value(std::move(value));
    }
    void fail(std::exception_ptr error) {
      if (table_ == nullptr) return;
      std::exchange(table_, nullptr)->remove(key_);
      promise_.set_exception(std::move(error));
    }
    [[nodiscard]] std::shared_future<FlightValue> future() { return promise_.get_future().share(); }

   private:
    FlightTable* table_;
    std::string key_;
    std::promise<FlightValue> promise_;
  };

  // Either a ticket (this caller leads) or the leader's future (this caller waits).
  struct Joined {
    std::optional<Ticket> ticket;
    std::shared_future<FlightValue> waiting;
  };

  Joined join(const std::string& key) {
    std::lock_guard lock(mutex_);
    if (auto it = flights_.find(key); it != flights_.end()) return {std::nullopt, it->second};
    Joined joined{Ticket(this, key), {}};
    flights_.emplace(key, joined.ticket->future());
    return joined;
  }

 private:
  void remove(const std::string& key) {
    std::lock_guard lock(mutex_);
    flights_.erase(key);
  }

  std::mutex mutex_;
  std::unordered_map<std::string, std::shared_future<FlightValue>> flights_;
};

}  // namespace cachekit::detail
