#pragma once
// Settings: the storefront's configuration — defaults, then the [storefront] table of the
// configuration file, then the command-line flags.
//
//   # storefront.toml (the same file holds the [caches.*] tables, read by cachekit::Caches)
//   [storefront]
//   port = 8000
//   upstream = "http://127.0.0.1:8001"   # or "https://httpbin.org"
//   upstream_delay = 2                    # seconds: the hello endpoints call /delay/<this>
//   hello_timeout = 300                   # cache_page timeout of the hello pages, seconds
//   hello_stale_while_revalidate = 0      # seconds an expired hello page is served while one
//                                         # refresh runs in the background (RFC 5861)
//   hello_stale_if_error = 0              # seconds an expired hello page stands in for a 5xx
//   allowed_hosts = ["shop.example.com"]  # Host names served; empty: loopback names only
//
// Every problem (unknown field, wrong type, value out of range) throws SettingsError naming the
// file and the field, at startup.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace storefront {

class SettingsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Settings {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8000;
  // The third-party API: the hello endpoints GET <upstream>/delay/<upstream_delay>.
  std::string upstream = "http://127.0.0.1:8001";
  double upstream_delay = 2.0;
  std::chrono::milliseconds upstream_timeout{10'000};  // the whole call
  std::chrono::milliseconds upstream_connect_timeout{2'000};
  // cache_page timeouts (the low-level API uses the cache's own default timeout).
  std::chrono::seconds hello_timeout{300};
  // RFC 5861 windows of the cache_page hello pages (0: never served stale).
  std::chrono::seconds hello_stale_while_revalidate{0};
  std::chrono::seconds hello_stale_if_error{0};
  // How long a store listing or product stays cached (writes expire them sooner).
  std::chrono::seconds store_timeout{300};
  // The SQLite database file, created and seeded on first start.
  std::filesystem::path database = "storefront.sqlite3";
  std::int64_t seed_products = 1000;
  std::int64_t seed_orders = 30'000;
  // Where hello.html lives.
  std::filesystem::path templates;
  std::size_t io_threads = 0;         // 0: one per core
  std::size_t handler_threads = 256;  // handlers block on the upstream for seconds
  std::size_t handler_queue = 4096;
  bool access_log = false;
  // Host names the server answers (Django's ALLOWED_HOSTS, ".example.com" for a domain and its
  // subdomains); empty: loopback names only. Other hosts get 400.
  std::vector<std::string> allowed_hosts;
};

// Applies the [storefront] table of `file` to `settings` (a file without one changes nothing).
// Relative paths in it are resolved against the file's directory. Throws SettingsError.
void apply_file(const std::filesystem::path& file, Settings& settings);

}  // namespace storefront
