#pragma once
// UpstreamClient: the third-party API the playground endpoints call — httpbin's /delay/{n}, or
// the demo's slow-upstream standing in for it — over HTTP with libcurl.
//
// Every call is bounded by a connect timeout and a total timeout, so a slow or dead upstream
// costs a handler thread at most `timeout`, never forever. Thread-safe: each thread keeps its own
// curl handle (and with it a kept-alive connection to the upstream).

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace storefront {

struct UpstreamOptions {
  std::string base_url;  // "http://127.0.0.1:8001", "https://httpbin.org"
  std::chrono::milliseconds timeout{10'000};
  std::chrono::milliseconds connect_timeout{2'000};
};

struct UpstreamReply {
  bool ok = false;
  nlohmann::json data;  // the upstream's JSON when ok
  std::string error;    // why not, when !ok
};

class UpstreamClient {
 public:
  // Calls curl_global_init once per process. Throws std::runtime_error when that fails.
  explicit UpstreamClient(UpstreamOptions options);

  // GET <base_url><path>, expecting a 2xx JSON answer. Never throws.
  [[nodiscard]] UpstreamReply get_json(const std::string& path) const;

  [[nodiscard]] const UpstreamOptions& options() const noexcept { return options_; }

 private:
  UpstreamOptions options_;
};

}  // namespace storefront
