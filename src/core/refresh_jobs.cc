#include "cachekit/refresh_jobs.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

#include "cachekit/lease.h"

namespace cachekit {
namespace {

using std::chrono::milliseconds;

struct Job {
  RefreshJobOptions options;
  RefreshJob run;
  TimePoint next_local{};   // when this scheduler looks at the job again
  milliseconds backoff{0};  // the delay after the next failure
  RefreshJobStats stats;
};

// A due job is run here (kRun), skipped because another scheduler holds or ran it (kSkip), or
// run here because the broker failed (kRunLocally).
enum class Turn : std::uint8_t { kRun, kSkip, kRunLocally };

std::optional<TimePoint> parse_time(std::string_view text) {
  std::int64_t ms = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, error] = std::from_chars(text.data(), end, ms);
  if (error != std::errc() || ptr != end) return std::nullopt;
  return TimePoint(milliseconds(ms));
}

// A job name as a Prometheus label value: backslash, double quote and newline escaped.
std::string label_value(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void check(const RefreshJobOptions& options, bool has_job) {
  if (options.name.empty()) throw std::invalid_argument("refresh job: the name is empty");
  if (options.interval < milliseconds(1)) {
    throw std::invalid_argument("refresh job '" + options.name + "': interval under 1 ms");
  }
  if (!(options.jitter >= 0 && options.jitter <= 0.5)) {
    throw std::invalid_argument("refresh job '" + options.name + "': jitter outside [0, 0.5]");
  }
  if (!has_job) throw std::invalid_argument("refresh job '" + options.name + "': no job");
}

milliseconds lease_ttl(const RefreshJobOptions& o) {
  return o.lease_ttl > milliseconds(0) ? o.lease_ttl : o.interval;
}
milliseconds max_backoff(const RefreshJobOptions& o) {
  return o.max_backoff > milliseconds(0) ? o.max_backoff : o.interval;
}
milliseconds initial_backoff(const RefreshJobOptions& o) {
  if (o.initial_backoff > milliseconds(0)) return std::min(o.initial_backoff, max_backoff(o));
  return std::max(milliseconds(1), std::min(o.interval / 8, max_backoff(o)));
}

}  // namespace

struct RefreshScheduler::Impl {
  RefreshSchedulerOptions options;
  const Clock* clock;
  mutable std::mutex mutex;
  std::condition_variable wake;
  std::map<std::string, std::unique_ptr<Job>, std::less<>> jobs;  // never shrinks
  std::mt19937_64 random{std::random_device{}()};
  bool changed = false;  // a job was added while the thread waited
  bool stopping = false;
  std::thread thread;

  explicit Impl(RefreshSchedulerOptions o)
      : options(std::move(o)),
        clock(options.clock != nullptr ? options.clock : &SystemClock::instance()) {}

  std::string broker_key(std::string_view kind, const Job& job) const {
    return fmt::format("{}:{}:{}", options.key_prefix, kind, job.options.name);
  }

  // interval × (1 ± jitter × uniform random). Call with `mutex` held.
  milliseconds jittered(const RefreshJobOptions& o) {
    std::uniform_real_distribution<double> spread(-o.jitter, o.jitter);
    const double factor = 1.0 + spread(random);
    return std::max(
        milliseconds(1),
        milliseconds(static_cast<std::int64_t>(static_cast<double>(o.interval.count()) * factor)));
  }

  // The next run time the broker holds: nullopt when none (or unreadable text: due).
  Result<std::optional<TimePoint>> broker_next(const Job& job) const {
    auto stored = options.broker->strict().get(broker_key("next", job));
    if (!stored.ok()) return stored.status();
    if (!*stored) return std::optional<TimePoint>();
    return parse_time((*stored)->view());
  }

  void note_broker_error(Job& job) {
    std::lock_guard lock(mutex);
    ++job.stats.broker_errors;
  }

  void skip(Job& job, TimePoint until) {
    std::lock_guard lock(mutex);
    ++job.stats.skipped_other_holder;
    job.next_local = until;
  }

  // How soon a scheduler that found the lease held looks again: the holder is at work and will
  // move the next run time, or it died and its lease expires within lease_ttl.
  static milliseconds retry_after_held(const Job& job) {
    return std::max(milliseconds(1), std::min(lease_ttl(job.options), job.options.interval) / 4);
  }

  // Whether the broker says this scheduler should run `job` now; on kRun, `lease` holds it.
  Turn decide(Job& job, TimePoint now, std::optional<Lease>& lease) {
    auto next = broker_next(job);
    if (!next.ok()) return Turn::kRunLocally;
    if (*next && **next > now) {
      skip(job, **next);
      return Turn::kSkip;
    }
    auto claim =
        Lease::try_acquire(*options.broker, broker_key("lease", job), lease_ttl(job.options));
    if (!claim.ok()) return Turn::kRunLocally;
    if (!claim->held()) {
      skip(job, now + retry_after_held(job));
      return Turn::kSkip;
    }
    lease.emplace(std::move(*claim));
    // Another holder may have run the job and released between our read and our claim.
    next = broker_next(job);
    if (next.ok() && *next && **next > now) {
      skip(job, **next);
      return Turn::kSkip;  // `lease` releases the claim
    }
    return Turn::kRun;
  }

  // Calls the job, catching what it throws.
  static Status call(const Job& job) {
    try {
      return job.run();
    } catch (const std::exception& error) {
      return internal_error(fmt::format("the job threw: {}", error.what()));
    } catch (...) {
      return internal_error("the job threw a non-standard exception");
    }
  }

  // Runs `job` here, counts the run and schedules the next one (locally); returns its time.
  TimePoint execute(Job& job) {
    const TimePoint started = clock->now();
    const auto steady_start = std::chrono::steady_clock::now();
    const Status status = call(job);
    const auto took =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - steady_start);
    const TimePoint finished = clock->now();
    TimePoint next;
    {
      std::lock_guard lock(mutex);
      auto& stats = job.stats;
      ++stats.runs;
      stats.last_duration = took;
      if (status.ok()) {
        stats.consecutive_failures = 0;
        stats.last_success = finished;
        job.backoff = initial_backoff(job.options);
        next = finished + jittered(job.options);
      } else {
        ++stats.failures;
        ++stats.consecutive_failures;
        stats.last_error = status.message();
        next = finished + job.backoff;
        job.backoff = std::min(job.backoff * 2, max_backoff(job.options));
      }
      job.next_local = next;
    }
    if (options.on_run) {
      options.on_run({job.options.name, started, took, status.ok(), status.message()});
    }
    return next;
  }

  // The next run time's broker entry outlives every schedule it may hold (an interval with
  // jitter, or a backoff) plus a run: when it is gone the job is simply due.
  void publish_next(Job& job, TimePoint next) {
    const auto lifetime = job.options.interval * 3 + lease_ttl(job.options);
    auto stored = options.broker->strict().set(broker_key("next", job),
                                               std::to_string(next.time_since_epoch().count()),
                                               Timeout(lifetime));
    if (!stored.ok()) note_broker_error(job);
  }

  // Returns whether the job ran here.
  bool run_one(Job& job) {
    if (options.broker == nullptr) {
      execute(job);
      return true;
    }
    std::optional<Lease> lease;
    switch (decide(job, clock->now(), lease)) {
      case Turn::kSkip:
        return false;
      case Turn::kRunLocally:
        note_broker_error(job);
        execute(job);
        return true;
      case Turn::kRun:
        publish_next(job, execute(job));
        return true;
    }
    return false;
  }

  std::vector<Job*> due_jobs() {
    std::lock_guard lock(mutex);
    std::vector<Job*> due;
    const TimePoint now = clock->now();
    for (auto& [name, job] : jobs) {
      if (job->next_local <= now) due.push_back(job.get());
    }
    return due;
  }

  std::optional<TimePoint> earliest_locked() const {
    std::optional<TimePoint> earliest;
    for (const auto& [name, job] : jobs) {
      if (!earliest || job->next_local < *earliest) earliest = job->next_local;
    }
    return earliest;
  }

  std::size_t run_pending() {
    std::size_t ran = 0;
    for (Job* job : due_jobs()) {
      {
        std::lock_guard lock(mutex);
        if (stopping) break;
      }
      if (run_one(*job)) ++ran;
    }
    return ran;
  }

  // The scheduler thread: run what is due, then sleep until the earliest job is due, a job is
  // added, or stop() is called. The wait is in the Clock's time, measured on the steady clock.
  void loop() {
    for (;;) {
      run_pending();
      std::unique_lock lock(mutex);
      if (stopping) return;
      const auto earliest = earliest_locked();
      const auto wait = earliest
                            ? std::chrono::duration_cast<milliseconds>(*earliest - clock->now())
                            : milliseconds(std::chrono::hours(1));
      if (wait > milliseconds(0) && !changed) {
        wake.wait_for(lock, wait, [this] { return stopping || changed; });
      }
      changed = false;
      if (stopping) return;
    }
  }
};

RefreshScheduler::RefreshScheduler(RefreshSchedulerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RefreshScheduler::~RefreshScheduler() { stop(); }

void RefreshScheduler::add(RefreshJobOptions options, RefreshJob job) {
  check(options, static_cast<bool>(job));
  auto entry = std::make_unique<Job>();
  entry->options = std::move(options);
  entry->run = std::move(job);
  entry->backoff = initial_backoff(entry->options);
  std::lock_guard lock(impl_->mutex);
  const TimePoint now = impl_->clock->now();
  entry->next_local = entry->options.run_at_start ? now : now + impl_->jittered(entry->options);
  const std::string name = entry->options.name;
  if (!impl_->jobs.emplace(name, std::move(entry)).second) {
    throw std::invalid_argument("refresh job '" + name + "': the name is taken");
  }
  impl_->changed = true;
  impl_->wake.notify_all();
}

void RefreshScheduler::refresh_key(RefreshJobOptions options, Cache& cache, std::string key,
                                   RefreshLoader loader, Timeout timeout) {
  if (!loader) check(options, false);
  add(std::move(options),
      [&cache, key = std::move(key), loader = std::move(loader), timeout]() -> Status {
        auto value = loader();
        if (!value.ok()) return value.status();
        return cache.strict().set(key, *value, timeout);
      });
}

void RefreshScheduler::start() {
  std::lock_guard lock(impl_->mutex);
  if (impl_->stopping) throw std::logic_error("RefreshScheduler::start after stop");
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([impl = impl_.get()] { impl->loop(); });
}

void RefreshScheduler::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
}

std::size_t RefreshScheduler::run_pending() { return impl_->run_pending(); }

std::optional<TimePoint> RefreshScheduler::next_due() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->earliest_locked();
}

std::optional<RefreshJobStats> RefreshScheduler::stats(std::string_view job) const {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->jobs.find(job);
  if (it == impl_->jobs.end()) return std::nullopt;
  return it->second->stats;
}

std::vector<std::pair<std::string, RefreshJobStats>> RefreshScheduler::stats() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<std::pair<std::string, RefreshJobStats>> all;
  for (const auto& [name, job] : impl_->jobs) all.emplace_back(name, job->stats);
  return all;
}

std::string RefreshScheduler::metrics_text() const {
  struct Family {
    const char* name;
    const char* help;
    std::uint64_t RefreshJobStats::*count;
  };
  static constexpr Family kFamilies[] = {
      {"cachekit_background_refreshes_total", "Background refresh runs in this process.",
       &RefreshJobStats::runs},
      {"cachekit_background_refresh_failures_total", "Background refresh runs that failed.",
       &RefreshJobStats::failures},
      {"cachekit_background_refresh_skipped_total",
       "Due background refreshes skipped because another holder ran them.",
       &RefreshJobStats::skipped_other_holder},
  };
  const auto all = stats();
  std::string out;
  if (all.empty()) return out;
  for (const auto& family : kFamilies) {
    out += fmt::format("# HELP {} {}\n# TYPE {} counter\n", family.name, family.help, family.name);
    for (const auto& [name, stats] : all) {
      out +=
          fmt::format("{}{{job=\"{}\"}} {}\n", family.name, label_value(name), stats.*family.count);
    }
  }
  return out;
}

}  // namespace cachekit
