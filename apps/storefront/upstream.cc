#include "upstream.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <stdexcept>

#include "cachekit/redact.h"

namespace storefront {
namespace {

struct CurlDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};

// One easy handle per thread: libcurl handles must not be shared between threads, and reusing
// one keeps its connection to the upstream alive between calls (no TCP handshake per request).
CURL* thread_handle() {
  thread_local std::unique_ptr<CURL, CurlDeleter> handle(curl_easy_init());
  if (handle) curl_easy_reset(handle.get());
  return handle.get();
}

std::size_t append(char* data, std::size_t size, std::size_t count, void* out) {
  static_cast<std::string*>(out)->append(data, size * count);
  return size * count;
}

}  // namespace

UpstreamClient::UpstreamClient(UpstreamOptions options) : options_(std::move(options)) {
  static std::once_flag once;
  static CURLcode init = CURLE_OK;
  std::call_once(once, [] { init = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (init != CURLE_OK) {
    throw std::runtime_error(std::string("libcurl: ") + curl_easy_strerror(init));
  }
  while (!options_.base_url.empty() && options_.base_url.back() == '/') {
    options_.base_url.pop_back();
  }
  if (options_.base_url.rfind("http://", 0) != 0 && options_.base_url.rfind("https://", 0) != 0) {
    throw std::runtime_error("the upstream URL must start with http:// or https://, got \"" +
                             cachekit::redact(options_.base_url) + "\"");
  }
}

UpstreamReply UpstreamClient::get_json(const std::string& path) const {
  UpstreamReply reply;
  CURL* curl = thread_handle();
  if (curl == nullptr) {
    reply.error = "libcurl could not create a handle";
    return reply;
  }
  const std::string url = options_.base_url + path;
  std::string body;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  // Timeouts by signal (the default) are not thread-safe; many handler threads call at once.
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "cachekit-storefront/0.1");
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);

  const CURLcode code = curl_easy_perform(curl);
  if (code != CURLE_OK) {
    reply.error = fmt::format("GET {}: {}", cachekit::redact(url), curl_easy_strerror(code));
    return reply;
  }
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status > 299) {
    reply.error = fmt::format("GET {}: HTTP {}", cachekit::redact(url), status);
    return reply;
  }
  reply.data = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (reply.data.is_discarded()) {
    reply.error = fmt::format("GET {}: the answer is not JSON", cachekit::redact(url));
    return reply;
  }
  reply.ok = true;
  return reply;
}

}  // namespace storefront
