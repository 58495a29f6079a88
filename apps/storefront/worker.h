#pragma once
// The storefront's background refresh job — the lesson's "celery job that updates the cache in
// the background": one upstream call per run keeps both the /playground/hello/ page and the
// low-level step's "httpbin_result" key fresh, so readers find them cached instead of waiting
// for the upstream.
//
//   storefront worker --config storefront.toml --cache-url redis://127.0.0.1:6379/2
//       --broker-url redis://127.0.0.1:6379/1 --interval 60 --page-host 127.0.0.1:8000
//   storefront --refresh-jobs ...        # the same jobs inside the serving process
//
// The page is rendered by the route's own code and stored with PageCache::update() for a
// synthetic `GET /playground/hello/` whose Host is the page host, so a reader's request for
// that Host finds it under the same key. The schedule and the lease live in the broker (a
// cachekit::RefreshScheduler job named "hello_page"): any number of workers and serving
// processes refresh the entries once per interval between them. Each run prints one line on stdout
// (time, job, took, ok or failed) so the demo can show what the jobs did.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cachekit/caches.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/refresh_jobs.h"
#include "views.h"

namespace storefront {

struct RefreshJobsFlags {
  // The broker's URL ("redis://127.0.0.1:6379/1"); "": the [caches.broker] table when there is
  // one, else the default cache (in-process locmem: the jobs are this process's alone).
  std::string broker_url;
  std::optional<double> interval;  // seconds between runs; default: hello_timeout / 2
  std::string page_host;           // the readers' Host; "": the storefront's address:port
};

class HelloRefreshJobs {
 public:
  // Resolves the broker. Throws cachekit::ConfigError for a bad broker URL and
  // std::invalid_argument for an interval that is not positive (startup errors).
  HelloRefreshJobs(const cachekit::Caches& caches, const RefreshJobsFlags& flags,
                   const Settings& settings);
  ~HelloRefreshJobs();  // stop()
  HelloRefreshJobs(const HelloRefreshJobs&) = delete;
  HelloRefreshJobs& operator=(const HelloRefreshJobs&) = delete;

  // Registers the job on `cache` (which, like what `hello` refers to, must outlive this object)
  // with `page_host` as the page's Host, and starts the scheduler thread.
  void start(const HelloContext& hello, cachekit::Cache& cache, const std::string& page_host);
  // Stops the scheduler (a running refresh finishes first). Idempotent.
  void stop();

  [[nodiscard]] std::chrono::milliseconds interval() const noexcept { return interval_; }
  [[nodiscard]] const cachekit::Cache& broker() const noexcept { return *broker_; }
  [[nodiscard]] const cachekit::RefreshScheduler& scheduler() const noexcept { return scheduler_; }

 private:
  std::optional<cachekit::Caches> broker_caches_;  // when the broker has a URL of its own
  cachekit::Cache* broker_ = nullptr;
  std::chrono::milliseconds interval_;
  std::chrono::milliseconds lease_ttl_;
  std::optional<HelloContext> hello_;
  std::unique_ptr<cachekit::http::PageCache> page_cache_;
  cachekit::RefreshScheduler scheduler_;  // last: stopped before what its jobs use goes
};

// The text of <settings.templates>/hello.html. Throws std::runtime_error when unreadable.
std::string read_hello_template(const Settings& settings);

// `storefront worker`: runs the jobs until SIGINT or SIGTERM, then stops cleanly. Returns the
// process's exit status. Throws on a configuration error (startup).
int run_worker(const Settings& settings, const cachekit::Caches& caches,
               const RefreshJobsFlags& flags);

}  // namespace storefront
