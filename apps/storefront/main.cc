// storefront: the demo application of the caching lesson, on cachekit's server.
//
//   storefront --config apps/storefront/storefront.toml --port 8000
//   open http://127.0.0.1:8000/      # the endpoints, one per step of the lesson
//
// Configuration: defaults, then the [storefront] table of --config, then the flags. The caches
// come from the [caches.*] tables of the same file (locmem when there is none); --cache-url (or
// CACHEKIT_CACHE_URL) swaps the default cache's backend, e.g. redis://127.0.0.1:6379/2.
//
// Background refresh (worker.h): `storefront worker --config F [--cache-url URL]
// [--broker-url URL] [--interval S] [--page-host HOST:PORT]` keeps /playground/hello/ and the
// httpbin_result key fresh from a process of its own; `storefront --refresh-jobs` runs the same
// jobs inside the serving process.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>

#include "cachekit/caches.h"
#include "cachekit/redact.h"
#include "cachekit/server/server.h"
#include "settings.h"
#include "store.h"
#include "upstream.h"
#include "views.h"
#include "worker.h"

#ifndef STOREFRONT_TEMPLATES_DIR
#define STOREFRONT_TEMPLATES_DIR "templates"
#endif

namespace {

using storefront::Settings;

struct Flags {
  std::string config;
  std::string cache_url;
  std::optional<std::string> address, upstream, database, templates;
  std::optional<std::uint16_t> port;
  std::optional<double> upstream_delay;
  std::optional<std::int64_t> hello_timeout, stale_while_revalidate, stale_if_error;
  std::optional<std::size_t> handler_threads;
  std::vector<std::string> allowed_hosts;
  bool access_log = false;
};

void add_flags(CLI::App& app, Flags& flags) {
  app.add_option("-c,--config", flags.config,
                 "TOML file with [storefront] settings and [caches.*] tables")
      ->check(CLI::ExistingFile);
  app.add_option("--cache-url", flags.cache_url,
                 "the default cache's backend, e.g. locmem://, redis://127.0.0.1:6379/2");
  app.add_option("--address", flags.address, "the address to listen on (127.0.0.1)");
  app.add_option("-p,--port", flags.port, "the port to listen on (8000; 0: any free port)");
  app.add_option("--upstream", flags.upstream,
                 "the third-party API base URL (http://127.0.0.1:8001, or https://httpbin.org)");
  app.add_option("--upstream-delay", flags.upstream_delay,
                 "seconds the hello endpoints ask the upstream to wait (/delay/<n>, 2)")
      ->check(CLI::Range(0.0, 10.0));
  app.add_option("--hello-timeout", flags.hello_timeout, "cache_page timeout in seconds (300)")
      ->check(CLI::Range(1, 31'536'000));
  app.add_option("--stale-while-revalidate", flags.stale_while_revalidate,
                 "seconds an expired hello page is served while one refresh runs (0)")
      ->check(CLI::Range(0, 31'536'000));
  app.add_option("--stale-if-error", flags.stale_if_error,
                 "seconds an expired hello page replaces an upstream error (0)")
      ->check(CLI::Range(0, 31'536'000));
  app.add_option("--database", flags.database, "the SQLite file (storefront.sqlite3)");
  app.add_option("--templates", flags.templates, "the directory holding hello.html");
  app.add_option("--handler-threads", flags.handler_threads, "handler pool size (256)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--allowed-host", flags.allowed_hosts,
                 "a Host name to serve (repeatable; \".example.com\" for a domain and its "
                 "subdomains; none: loopback names only)");
  app.add_flag("--access-log", flags.access_log, "log every request on stderr");
}

Settings settings_from(const Flags& flags) {
  Settings settings;
  settings.templates = STOREFRONT_TEMPLATES_DIR;
  if (!flags.config.empty()) storefront::apply_file(flags.config, settings);
  if (flags.address) settings.address = *flags.address;
  if (flags.port) settings.port = *flags.port;
  if (flags.upstream) settings.upstream = *flags.upstream;
  if (flags.upstream_delay) settings.upstream_delay = *flags.upstream_delay;
  if (flags.hello_timeout) settings.hello_timeout = std::chrono::seconds(*flags.hello_timeout);
  if (flags.stale_while_revalidate) {
    settings.hello_stale_while_revalidate = std::chrono::seconds(*flags.stale_while_revalidate);
  }
  if (flags.stale_if_error) {
    settings.hello_stale_if_error = std::chrono::seconds(*flags.stale_if_error);
  }
  if (flags.database) settings.database = *flags.database;
  if (flags.templates) settings.templates = *flags.templates;
  if (flags.handler_threads) settings.handler_threads = *flags.handler_threads;
  if (!flags.allowed_hosts.empty()) settings.allowed_hosts = flags.allowed_hosts;
  if (flags.access_log) settings.access_log = true;
  return settings;
}

// The background refresh jobs' flags, on the serving command and on `worker`.
struct JobFlags {
  storefront::RefreshJobsFlags jobs;
  bool in_process = false;  // --refresh-jobs
};

void add_job_flags(CLI::App& app, JobFlags& flags) {
  app.add_option("--broker-url", flags.jobs.broker_url,
                 "the refresh jobs' schedule and leases, e.g. redis://127.0.0.1:6379/1 "
                 "(default: [caches.broker], else the default cache)");
  app.add_option("--interval", flags.jobs.interval,
                 "seconds between refreshes of each job (default: hello_timeout / 2)")
      ->check(CLI::PositiveNumber);
  app.add_option("--page-host", flags.jobs.page_host,
                 "the Host of the refreshed /playground/hello/ page (default: address:port)");
}

// `storefront worker`: the settings flags the jobs read, and the jobs' own.
CLI::App* add_worker_command(CLI::App& cli, Flags& flags, JobFlags& job_flags) {
  CLI::App* worker = cli.add_subcommand(
      "worker", "run the background refresh jobs (the lesson's celery worker) until SIGTERM");
  worker->add_option("-c,--config", flags.config, "the storefront's TOML file")
      ->check(CLI::ExistingFile);
  worker->add_option("--cache-url", flags.cache_url, "the default cache's backend");
  worker->add_option("--upstream", flags.upstream, "the third-party API base URL");
  worker->add_option("--upstream-delay", flags.upstream_delay, "seconds of /delay/<n>")
      ->check(CLI::Range(0.0, 10.0));
  worker->add_option("--hello-timeout", flags.hello_timeout, "cache_page timeout in seconds")
      ->check(CLI::Range(1, 31'536'000));
  worker->add_option("--templates", flags.templates, "the directory holding hello.html");
  add_job_flags(*worker, job_flags);
  return worker;
}

cachekit::Caches load_caches(const Flags& flags) {
  if (!flags.cache_url.empty()) ::setenv("CACHEKIT_CACHE_URL", flags.cache_url.c_str(), 1);
  if (flags.config.empty()) return cachekit::Caches::from_environment();
  // The [caches.*] tables of the same file (a file without them is an error: say so).
  ::setenv("CACHEKIT_CONFIG", flags.config.c_str(), 1);
  return cachekit::Caches::from_environment();
}

int serve(const Flags& flags, const JobFlags& job_flags) {
  const Settings settings = settings_from(flags);
  cachekit::Caches caches = load_caches(flags);
  cachekit::Cache& cache = caches.default_cache();
  storefront::UpstreamClient upstream({.base_url = settings.upstream,
                                       .timeout = settings.upstream_timeout,
                                       .connect_timeout = settings.upstream_connect_timeout});
  storefront::Store store(settings.database, settings.seed_products, settings.seed_orders);
  storefront::App app{.settings = settings,
                      .cache = cache,
                      .upstream = upstream,
                      .store = store,
                      .hello_template = storefront::read_hello_template(settings)};
  std::optional<storefront::HelloRefreshJobs> jobs;
  if (job_flags.in_process) jobs.emplace(caches, job_flags.jobs, settings);

  cachekit::server::Server server({.address = settings.address,
                                   .port = settings.port,
                                   .io_threads = settings.io_threads,
                                   .handler_threads = settings.handler_threads,
                                   .handler_queue = settings.handler_queue,
                                   .allowed_hosts = settings.allowed_hosts,
                                   .access_log = settings.access_log});
  storefront::add_index_route(server.router(), app);
  storefront::add_playground_routes(server.router(), app);
  storefront::add_store_routes(server.router(), app);
  server.watch_cache("default", cache);
  if (jobs) server.add_metrics_text([&jobs] { return jobs->scheduler().metrics_text(); });
  server.run([&](cachekit::server::Server& s) {
    std::printf("storefront listening on http://%s:%u (cache: %s, upstream: %s)\n",
                settings.address.c_str(), s.port(), cache.backend_info().name.c_str(),
                cachekit::redact(settings.upstream).c_str());
    std::fflush(stdout);
    if (jobs) {
      const auto& host = job_flags.jobs.page_host;
      jobs->start(app.hello(), cache,
                  host.empty() ? fmt::format("{}:{}", settings.address, s.port()) : host);
    }
  });
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"storefront: the caching lesson's demo shop on cachekit"};
  Flags flags;
  add_flags(cli, flags);
  JobFlags job_flags;
  add_job_flags(cli, job_flags);
  cli.add_flag("--refresh-jobs", job_flags.in_process,
               "run the background refresh jobs in this process too");
  const CLI::App* worker = add_worker_command(cli, flags, job_flags);
  CLI11_PARSE(cli, argc, argv);
  try {
    if (worker->parsed()) {
      return storefront::run_worker(settings_from(flags), load_caches(flags), job_flags.jobs);
    }
    return serve(flags, job_flags);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "storefront: %s\n", error.what());
    return 2;
  }
}
