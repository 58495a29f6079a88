// Cache::get_or_refresh: stale-while-revalidate, stale-if-error and XFetch early refresh over
// an envelope (src/core/envelope.h), guarded by the same single-flight and fleet lease as
// get_or_set (src/core/get_or_set.cc).
//
// A reader never waits for a refresh it does not need: a fresh value (even one XFetch decided
// to refresh early) and a stale one inside stale_while_revalidate are returned at once, and the
// refresh runs on the Cache's RefreshExecutor. Only the reader that joins the key's flight as
// its leader submits the refresh (the flight ticket moves into the task), so a hot key gets one
// refresh per process; the task then takes the fleet lease, and a task that finds another
// process's lease drops the refresh — that process is doing it. A missing value, or one past
// stale_while_revalidate, is loaded in the foreground through the flight and the lease; if the
// loader throws, stale_if_error decides between the stale value and the exception.

#include <chrono>
#include <cmath>
#include <memory>
#include <random>

#include "cachekit/cache.h"
#include "cachekit/lease.h"
#include "core/cache_counters.h"
#include "core/envelope.h"
#include "core/refresh_executor.h"
#include "core/single_flight.h"

namespace cachekit {

namespace {

using std::chrono::milliseconds;

// XFetch (Vattani et al. 2015): refresh when now − δ·β·ln(u) ≥ fresh-until, u uniform in (0, 1].
bool early_refresh_due(const detail::Envelope& envelope, double beta, TimePoint now) {
  if (beta <= 0.0 || envelope.compute_time.count() <= 0) return false;
  thread_local std::mt19937_64 gen{std::random_device{}()};
  const double u = 1.0 - std::uniform_real_distribution<double>(0.0, 1.0)(gen);
  const double ahead_ms = -static_cast<double>(envelope.compute_time.count()) * beta * std::log(u);
  return static_cast<double>(now.time_since_epoch().count()) + ahead_ms >=
         static_cast<double>(envelope.fresh_until.time_since_epoch().count());
}

milliseconds grace(const RefreshPolicy& policy) {
  return std::max({policy.stale_while_revalidate, policy.stale_if_error, milliseconds(0)});
}

}  // namespace

std::optional<Bytes> Cache::refresh_bytes(std::string_view key, Version version,
                                          const RefreshPolicy& policy, const LoadFunction& load) {
  auto k = final_key(key, version);
  if (!k.ok()) {
    record_failure(k.status(), "get_or_refresh");
    auto computed = load();
    return computed ? std::optional<Bytes>(Bytes(*computed)) : std::nullopt;
  }
  std::optional<detail::Envelope> stored;
  if (auto raw = backend_->get(*k); !raw.ok()) {
    record_failure(raw.status(), "get_or_refresh");
  } else if (raw->has_value()) {
    if (auto decoded = decode_stored(std::move(**raw)); decoded.ok()) {
      stored = detail::unwrap_envelope(*decoded);
    }
  }
  const TimePoint now = clock_->now();
  if (stored && now < stored->fresh_until) {
    counters_->add(detail::kHits);
    if (early_refresh_due(*stored, policy.early_refresh_beta, now)) {
      counters_->add(detail::kEarlyRefreshes);
      start_background_refresh(key, *k, version, policy, load);
    }
    return std::move(stored->payload);
  }
  counters_->add(detail::kMisses);
  if (stored && now < stored->fresh_until + policy.stale_while_revalidate) {
    counters_->add(detail::kStaleServedRevalidate);
    start_background_refresh(key, *k, version, policy, load);
    return std::move(stored->payload);
  }
  try {
    return load_fresh(key, *k, version, policy, load);
  } catch (...) {
    if (!stored || now >= stored->fresh_until + policy.stale_if_error) throw;
    counters_->add(detail::kStaleServedError);
    return std::move(stored->payload);
  }
}

// The foreground load: one per process (flight), one per fleet (lease), as in get_or_set.
std::optional<Bytes> Cache::load_fresh(std::string_view key, const std::string& final,
                                       Version version, const RefreshPolicy& policy,
                                       const LoadFunction& load) {
  detail::FlightTable::Joined joined = flights_->join(final);
  if (!joined.ticket) {
    counters_->add(detail::kCollapsedWaits);
    if (joined.waiting.wait_for(options_.collapse_wait) == std::future_status::ready) {
      detail::FlightValue value = joined.waiting.get();  // rethrows the leader's exception
      if (value) return value;
    }
    return load_and_wrap(key, version, policy, load);
  }
  try {
    std::optional<Bytes> value = get(key, version);  // fresh from another flight or process?
    std::optional<Lease> lease;
    if (!value) value = claim_or_await(key, version, lease);
    if (!value) value = load_and_wrap(key, version, policy, load);
    joined.ticket->publish(value);
    return value;
  } catch (...) {
    joined.ticket->fail(std::current_exception());
    throw;
  }
}

std::optional<Bytes> Cache::load_and_wrap(std::string_view key, Version version,
                                          const RefreshPolicy& policy, const LoadFunction& load) {
  const TimePoint started = clock_->now();
  std::optional<std::string> payload = load();
  if (!payload) return std::nullopt;
  const TimePoint now = clock_->now();
  const milliseconds fresh_for = std::max(policy.fresh_for, milliseconds(1));
  const TimePoint fresh_until = now + fresh_for;
  const TimePoint stale_until = fresh_until + grace(policy);
  set(key, detail::wrap_envelope(fresh_until, stale_until, now - started, *payload),
      Timeout(stale_until - now), version);
  return Bytes(*payload);
}

void Cache::start_background_refresh(std::string_view key, const std::string& final,
                                     Version version, const RefreshPolicy& policy,
                                     const LoadFunction& load) {
  detail::FlightTable::Joined joined = flights_->join(final);
  if (!joined.ticket) return;  // a load of this key is running already
  auto ticket = std::make_shared<detail::FlightTable::Ticket>(std::move(*joined.ticket));
  // A refused task destroys its ticket, which wakes any waiter to load the key itself.
  refresher_->submit([this, ticket, key = std::string(key), version, policy, load] {
    std::optional<Lease> lease;
    if (backend_->info().outlives_process) {
      auto claim = Lease::try_acquire(*this, lease_name(key), options_.lease_ttl);
      if (claim.ok() && !claim->held()) {  // another process is refreshing it
        counters_->add(detail::kRefreshesSkipped);
        ticket->publish(std::nullopt);
        return;
      }
      if (claim.ok()) lease.emplace(std::move(*claim));
    }
    try {
      std::optional<Bytes> value = load_and_wrap(key, version, policy, load);
      counters_->add(detail::kRefreshes);
      ticket->publish(std::move(value));
    } catch (...) {
      counters_->add(detail::kRefreshFailures);
      ticket->fail(std::current_exception());
    }
  });
}

}  // namespace cachekit
