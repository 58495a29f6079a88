#pragma once
// RefreshScheduler: background jobs that keep cache entries fresh — the lesson's "celery job that
// updates the cache every now and then" — so that readers find a live value instead of waiting
// for the slow computation behind it.
//
//   cachekit::RefreshScheduler jobs({.broker = &caches.at("broker")});
//   jobs.refresh_key({.name = "httpbin_result", .interval = 60s}, cache, "httpbin_result",
//                    [&]() -> cachekit::Result<std::string> { return call_the_api(); },
//                    10min);   // longer than the interval: the entry never expires between runs
//   jobs.add({.name = "sitemap", .interval = 5min}, [&] { return rebuild_sitemap(); });
//   jobs.start();   // one thread; stop() (or the destructor) wakes it and joins
//
// Schedule: each job runs at start (unless told not to), then every `interval` ± a random
// `jitter` (a fraction of the interval), so a fleet started together does not fire in step.
//
// Several processes, one run per interval: the schedule lives in the "broker" cache (any Cache;
// the storefront uses Redis database 1) under "<key_prefix>:next:<job>" (the next run time, in
// milliseconds since the epoch) and a Lease (cachekit/lease.h) named "<key_prefix>:lease:<job>".
// A due job is run by the scheduler that takes the lease, which then writes the next run time
// and releases; the others see the lease held or the next run moved forward, skip (counted in
// skipped_other_holder) and adopt the broker's time. The lease lives `lease_ttl` (a bound on the
// job's run time): a holder that dies leaves it to expire, the next run time stays due, and
// another scheduler runs the job after the lease ttl. Without a broker every job runs locally.
//
// Failures: a job that returns an error or throws counts a failure, changes nothing (refresh_key
// writes only a loaded value, so the last good value stays) and is retried after a backoff that
// doubles from `initial_backoff` up to `max_backoff` (default: the interval); the next success
// resets it. The backoff is written to the broker too, so the fleet backs off together.
//
// Broker down: fail open. A broker read or lease error runs the job here, on this scheduler's
// own schedule (counted in broker_errors): the entry stays fresh, with one run per scheduler
// rather than per fleet until the broker is back.
//
// Stop: stop() wakes the scheduler thread at once, never waiting out an interval. A job already
// running is not interrupted: stop() returns when it does, so jobs must bound their own run time
// (the storefront's upstream calls have a timeout); no job starts after stop().
//
// Thread-safety: add()/refresh_key() before or after start(); stats(), metrics_text() and stop()
// from any thread. run_pending() is for a scheduler that was not start()ed (tests driving a
// ManualClock): it runs the due jobs on the calling thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cachekit/cache.h"
#include "cachekit/clock.h"
#include "cachekit/status.h"
#include "cachekit/timeout.h"

namespace cachekit {

struct RefreshJobOptions {
  std::string name;  // unique in a scheduler and across the fleet sharing a broker
  std::chrono::milliseconds interval{60'000};  // at least 1 ms
  double jitter = 0.1;  // the next run is interval × (1 ± jitter × random), jitter in [0, 0.5]
  std::chrono::milliseconds lease_ttl{0};        // 0: the interval
  std::chrono::milliseconds initial_backoff{0};  // 0: interval / 8 (at least 1 ms)
  std::chrono::milliseconds max_backoff{0};      // 0: the interval
  bool run_at_start = true;                      // false: the first run after one interval
};

// What a job returns: ok, or why it failed (a thrown exception counts as a failure too).
using RefreshJob = std::function<Status()>;
// What refresh_key's loader returns: the value to store, or why there is none.
using RefreshLoader = std::function<Result<std::string>()>;

struct RefreshJobStats {
  std::uint64_t runs = 0;                  // runs here (successful or not)
  std::uint64_t failures = 0;              // runs that failed
  std::uint64_t skipped_other_holder = 0;  // due, but another scheduler held or ran it
  std::uint64_t broker_errors = 0;         // broker failures (the job then ran locally)
  std::uint32_t consecutive_failures = 0;  // since the last success
  std::optional<TimePoint> last_success{};
  std::chrono::milliseconds last_duration{0};  // of the last run here
  std::string last_error{};                    // of the last failure
};

// One finished run, for logs: see RefreshSchedulerOptions::on_run.
struct RefreshEvent {
  std::string_view job;
  TimePoint started;
  std::chrono::milliseconds took;
  bool ok;
  std::string_view error;  // when !ok
};

struct RefreshSchedulerOptions {
  Cache* broker = nullptr;  // the shared schedule and leases; nullptr: jobs are local only
  std::string key_prefix = "refresh";  // broker keys "<key_prefix>:next:<job>" and ":lease:"
  const Clock* clock = nullptr;        // nullptr: SystemClock
  // Called on the scheduler thread after every run here (not for skips). Must not throw.
  std::function<void(const RefreshEvent&)> on_run{};
};

class RefreshScheduler {
 public:
  explicit RefreshScheduler(RefreshSchedulerOptions options = {});
  ~RefreshScheduler();  // stop()
  RefreshScheduler(const RefreshScheduler&) = delete;
  RefreshScheduler& operator=(const RefreshScheduler&) = delete;

  // Registers a job. Throws std::invalid_argument (a startup error) for an empty or taken name,
  // an interval under 1 ms, a jitter outside [0, 0.5] or an empty job.
  void add(RefreshJobOptions options, RefreshJob job);
  // Registers a job that calls `loader` and set()s its value under `key` of `cache` with
  // `timeout`, which should outlive the interval (plus the jitter and the run time) so readers
  // never miss. A failed load (an error or an exception) stores nothing; a failed write is a
  // failure. `cache` must outlive the scheduler. Throws as add().
  void refresh_key(RefreshJobOptions options, Cache& cache, std::string key, RefreshLoader loader,
                   Timeout timeout);

  // Starts the scheduler thread; no-op when running. Throws std::logic_error after stop().
  void start();
  // Wakes the thread and joins it (waiting for a running job to return). Idempotent.
  void stop();
  // Runs every job due now on the calling thread; returns how many ran here. For schedulers
  // that were not start()ed.
  std::size_t run_pending();
  // When the earliest job is due here (its local schedule); nullopt without jobs.
  [[nodiscard]] std::optional<TimePoint> next_due() const;

  // A job's counters; nullopt for an unknown name.
  [[nodiscard]] std::optional<RefreshJobStats> stats(std::string_view job) const;
  // Every job's counters, by name.
  [[nodiscard]] std::vector<std::pair<std::string, RefreshJobStats>> stats() const;
  // The counters in the Prometheus text format, one sample per job:
  //   cachekit_background_refreshes_total{job="..."}          runs here
  //   cachekit_background_refresh_failures_total{job="..."}   failed runs here
  //   cachekit_background_refresh_skipped_total{job="..."}    skipped: another holder ran it
  [[nodiscard]] std::string metrics_text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachekit
