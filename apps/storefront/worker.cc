#include "worker.h"

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <signal.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "cachekit/redact.h"
#include "upstream.h"

namespace storefront {
namespace {

namespace http = cachekit::http;
using std::chrono::milliseconds;

constexpr const char* kHelloPath = "/playground/hello/";

// One line per run, for the demo's log: "2026-12-06 05:30:01.123 hello_page 2004 ms ok".
void print_run(const cachekit::RefreshEvent& event) {
  const std::string outcome = event.ok ? "ok" : fmt::format("failed: {}", event.error);
  std::printf("%s\n", fmt::format("{:%Y-%m-%d %H:%M:%S} {} {} ms {}", event.started, event.job,
                                  event.took.count(), outcome)
                          .c_str());
  std::fflush(stdout);
}

milliseconds interval_of(const RefreshJobsFlags& flags, const Settings& settings) {
  if (!flags.interval)
    return std::max(milliseconds(1000), milliseconds(settings.hello_timeout) / 2);
  if (!std::isfinite(*flags.interval) || *flags.interval <= 0) {
    throw std::invalid_argument("the refresh interval must be a positive number of seconds");
  }
  return milliseconds(std::max<std::int64_t>(1, std::llround(*flags.interval * 1000)));
}

// What the route's cache_page(settings.hello_timeout, ..., {.cache = &cache}) builds, so the
// stored page is keyed and timed as a reader's miss would store it.
http::PageCacheOptions hello_page_options(cachekit::Cache& cache, const Settings& settings) {
  return {.cache = &cache,
          .page_timeout = settings.hello_timeout,
          .stale_while_revalidate = settings.hello_stale_while_revalidate,
          .stale_if_error = settings.hello_stale_if_error};
}

// One upstream call feeds both entries the readers use: the low-level step's httpbin_result
// (the cache's default timeout, as that step's own set() uses) and the page, rendered from the
// same answer and stored for a `GET /playground/hello/` with Host `host`. When the upstream
// fails nothing is written: the last good entries stay.
cachekit::Status refresh_hello(const HelloContext& hello, cachekit::Cache& cache,
                               const http::PageCache& pages, const std::string& host) {
  auto data = fetch_hello_data(hello);
  if (!data.ok()) return data.status();
  if (!cache.set(kHttpbinResultKey, data->dump())) {
    return cachekit::unavailable_error(fmt::format("{} was not stored", kHttpbinResultKey));
  }
  http::Request request;
  request.method = "GET";
  request.path = kHelloPath;
  request.headers.set("Host", host);
  auto response = render_hello_page(hello, *data);
  pages.update(request, response);
  if (!response.cache_status || !response.cache_status->stored) {
    const auto detail = response.cache_status ? response.cache_status->detail : "";
    return cachekit::unavailable_error(fmt::format("the page was not stored ({})", detail));
  }
  return {};
}

// --broker-url's cache (kept in `owned`), else [caches.broker], else the default cache.
cachekit::Cache* resolve_broker(const cachekit::Caches& caches, const std::string& url,
                                std::optional<cachekit::Caches>& owned) {
  if (!url.empty()) return &owned.emplace(cachekit::Caches::from_url(url)).default_cache();
  if (auto* configured = caches.find("broker")) return configured;
  return &caches.default_cache();
}

}  // namespace

std::string read_hello_template(const Settings& settings) {
  const auto file = settings.templates / "hello.html";
  std::ifstream in(file);
  if (!in) throw std::runtime_error("cannot read the template " + file.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

HelloRefreshJobs::HelloRefreshJobs(const cachekit::Caches& caches, const RefreshJobsFlags& flags,
                                   const Settings& settings)
    : broker_(resolve_broker(caches, flags.broker_url, broker_caches_)),
      interval_(interval_of(flags, settings)),
      // A bound on a run: the upstream call's own timeout, and a margin for the store.
      lease_ttl_(settings.upstream_timeout + milliseconds(2000)),
      scheduler_({.broker = broker_, .on_run = print_run}) {}

HelloRefreshJobs::~HelloRefreshJobs() { stop(); }

void HelloRefreshJobs::start(const HelloContext& hello, cachekit::Cache& cache,
                             const std::string& page_host) {
  // A copy of the context (references to what outlives this object), not the caller's.
  const HelloContext& context = hello_.emplace(hello);
  page_cache_ = std::make_unique<http::PageCache>(hello_page_options(cache, context.settings));
  scheduler_.add(
      {.name = "hello_page", .interval = interval_, .jitter = 0.1, .lease_ttl = lease_ttl_},
      [&context, &cache, pages = page_cache_.get(), page_host] {
        return refresh_hello(context, cache, *pages, page_host);
      });
  scheduler_.start();
}

void HelloRefreshJobs::stop() { scheduler_.stop(); }

int run_worker(const Settings& settings, const cachekit::Caches& caches,
               const RefreshJobsFlags& flags) {
  // The signals wait for sigwait() below: blocked before any thread starts, so none of them
  // takes SIGINT/SIGTERM instead.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  cachekit::Cache& cache = caches.default_cache();
  UpstreamClient upstream({.base_url = settings.upstream,
                           .timeout = settings.upstream_timeout,
                           .connect_timeout = settings.upstream_connect_timeout});
  const std::string hello_template = read_hello_template(settings);
  const HelloContext hello{settings, upstream, hello_template};
  const std::string page_host = flags.page_host.empty()
                                    ? fmt::format("{}:{}", settings.address, settings.port)
                                    : flags.page_host;
  HelloRefreshJobs jobs(caches, flags, settings);
  std::printf(
      "storefront worker: refreshing http://%s%s and %s every %.3g s (cache: %s, "
      "broker: %s, upstream: %s)\n",
      page_host.c_str(), kHelloPath, std::string(kHttpbinResultKey).c_str(),
      static_cast<double>(jobs.interval().count()) / 1000, cache.backend_info().name.c_str(),
      jobs.broker().backend_info().name.c_str(), cachekit::redact(settings.upstream).c_str());
  std::fflush(stdout);
  jobs.start(hello, cache, page_host);
  int signal = 0;
  sigwait(&signals, &signal);
  std::printf("storefront worker: stopping (%s)\n", signal == SIGINT ? "SIGINT" : "SIGTERM");
  std::fflush(stdout);
  jobs.stop();
  return 0;
}

}  // namespace storefront
