#include "http/coalescer.h"

namespace cachekit::http::detail {

Coalescer::Ticket Coalescer::join(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto [it, inserted] = flights_.try_emplace(key);
  if (inserted) it->second = std::make_shared<Flight>();
  return Ticket{it->second, inserted};
}

void Coalescer::publish(const std::string& key, const Ticket& ticket, Outcome outcome) {
  {
    std::lock_guard lock(mutex_);
    auto it = flights_.find(key);
    if (it != flights_.end() && it->second == ticket.flight) flights_.erase(it);
  }
  // After the leader's store (which precedes publish): a miss that read finished() before
  // this and the store before the page was written sees the count change.
  finished_.fetch_add(1, std::memory_order_acq_rel);
  {
    std::lock_guard lock(ticket.flight->mutex);
    ticket.flight->outcome = std::move(outcome);
    ticket.flight->done = true;
  }
  // Every waiter at once: they only copy a response (no handler call), so there is no herd
  // to pace as Varnish's rush_exponent does for waiters that go on to fetch.
  ticket.flight->done_cv.notify_all();
}

std::optional<Outcome> Coalescer::wait(const Ticket& ticket, std::chrono::milliseconds limit) {
  struct Counted {
    std::atomic<std::size_t>& n;
    explicit Counted(std::atomic<std::size_t>& count) : n(count) { ++n; }
    ~Counted() { --n; }
  } counted(waiting_);
  std::unique_lock lock(ticket.flight->mutex);
  if (!ticket.flight->done_cv.wait_for(lock, limit, [&] { return ticket.flight->done; })) {
    return std::nullopt;
  }
  return ticket.flight->outcome;  // a copy: the body Bytes is shared, not duplicated
}

bool Coalescer::passing(const std::string& key, TimePoint now) {
  std::lock_guard lock(mutex_);
  auto it = passing_until_.find(key);
  if (it == passing_until_.end()) return false;
  if (it->second > now) return true;
  passing_until_.erase(it);
  return false;
}

void Coalescer::mark_passing(const std::string& key, TimePoint now) {
  std::lock_guard lock(mutex_);
  if (passing_until_.size() >= kMaxPassing) {
    std::erase_if(passing_until_, [&](const auto& e) { return e.second <= now; });
    // Still full of live marks: forget them all. The memo is an optimisation; losing it only
    // means one more coalesced wait per key.
    if (passing_until_.size() >= kMaxPassing) passing_until_.clear();
  }
  passing_until_[key] = now + kPassFor;
}

}  // namespace cachekit::http::detail
