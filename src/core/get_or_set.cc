// Cache::get_or_set's miss path: single-flight in the process, a lease across the fleet.
//
// A miss first joins the process's flight for its final key (src/core/single_flight.h). The
// leader re-reads the store (another flight may have stored the value between this caller's
// miss and its join), then, on a store that outlives the process, claims the fleet lease for
// the key: held → load and add; held by another process → poll the store with backoff for that
// process's value, taking the lease over if it expires (its holder died), and past lease_wait
// load anyway; a store error → load anyway. Every path ends by publishing one value to the
// waiters, or the loader's exception.

#include <algorithm>
#include <chrono>
#include <thread>

#include "cachekit/cache.h"
#include "cachekit/lease.h"
#include "core/cache_counters.h"
#include "core/single_flight.h"

namespace cachekit {

namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kFirstPoll{5};
constexpr std::chrono::milliseconds kLongestPoll{200};

}  // namespace

Cache::Loaded Cache::load_collapsed(std::string_view key, Timeout timeout, Version version,
                                    const LoadFunction& load) {
  auto k = final_key(key, version);
  if (!k.ok()) return load_and_add(key, timeout, version, load);  // add() reports the key
  detail::FlightTable::Joined joined = flights_->join(*k);
  if (!joined.ticket) {
    counters_->add(detail::kCollapsedWaits);
    if (joined.waiting.wait_for(options_.collapse_wait) == std::future_status::ready) {
      detail::FlightValue value = joined.waiting.get();  // rethrows the leader's exception
      if (value) return {std::move(value), false};
    }
    return load_and_add(key, timeout, version, load);
  }
  detail::FlightTable::Ticket& ticket = *joined.ticket;
  try {
    Loaded loaded = lead_load(key, timeout, version, load);
    ticket.publish(loaded.bytes);
    return loaded;
  } catch (...) {
    ticket.fail(std::current_exception());
    throw;
  }
}

Cache::Loaded Cache::lead_load(std::string_view key, Timeout timeout, Version version,
                               const LoadFunction& load) {
  if (auto stored = get(key, version)) return {std::move(stored), false};
  std::optional<Lease> lease;
  if (auto stored = claim_or_await(key, version, lease)) return {std::move(stored), false};
  return load_and_add(key, timeout, version, load);
}

std::optional<Bytes> Cache::claim_or_await(std::string_view key, Version version,
                                           std::optional<Lease>& lease) {
  if (!backend_->info().outlives_process) return std::nullopt;
  const std::string name = lease_name(key);
  auto claim = Lease::try_acquire(*this, name, options_.lease_ttl);
  if (!claim.ok()) return std::nullopt;  // the store failed: fail open, load here
  if (claim->held()) {
    lease.emplace(std::move(*claim));
    return std::nullopt;
  }
  // Another process is loading the key: its value is what we want.
  counters_->add(detail::kLeaseWaits);
  const auto deadline = SteadyClock::now() + options_.lease_wait;
  for (auto pause = kFirstPoll; SteadyClock::now() < deadline;
       pause = std::min(pause * 2, kLongestPoll)) {
    std::this_thread::sleep_for(
        std::min<SteadyClock::duration>(pause, deadline - SteadyClock::now()));
    if (auto stored = get(key, version)) return stored;
    claim = Lease::try_acquire(*this, name, options_.lease_ttl);
    if (!claim.ok()) return std::nullopt;
    if (claim->held()) {  // the holder gave up or died and its claim expired
      counters_->add(detail::kLeaseTakeovers);
      lease.emplace(std::move(*claim));
      return std::nullopt;
    }
  }
  return std::nullopt;  // waited long enough: load here
}

Cache::Loaded Cache::load_and_add(std::string_view key, Timeout timeout, Version version,
                                  const LoadFunction& load) {
  std::optional<std::string> computed = load();
  if (!computed) return {};
  if (add(key, *computed, timeout, version)) return {Bytes(*computed), true};
  if (auto now = get(key, version)) return {std::move(now), false};  // a concurrent writer won
  return {Bytes(*computed), true};
}

}  // namespace cachekit
