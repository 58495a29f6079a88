#pragma once
// A tiny blocking HTTP/1.1 client over POSIX sockets, for end-to-end tests of the server: it
// speaks real HTTP over a real loopback connection, can keep a connection alive, send raw
// (even malformed or partial) bytes, and notice when the server closes. Every read is bounded
// by a timeout so a broken server fails a test instead of hanging it. Not thread-safe: one
// client per thread.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cachekit::testing {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ClientResponse {
  int status = 0;
  HeaderList headers;
  std::string body;

  // The first value of `name` (case-insensitive), or nullopt.
  [[nodiscard]] std::optional<std::string> header(std::string_view name) const;
  // How many fields are called `name`.
  [[nodiscard]] std::size_t count(std::string_view name) const;
};

class HttpClient {
 public:
  // Connects to 127.0.0.1:`port`. Throws std::runtime_error when the connection fails.
  explicit HttpClient(std::uint16_t port,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();
  HttpClient(HttpClient&& other) noexcept;
  HttpClient& operator=(HttpClient&&) = delete;

  // Sends one request — "Host: 127.0.0.1:<port>" unless `headers` has a Host, Content-Length
  // when there is a body — and reads its response. nullopt when the connection failed or the
  // server closed it, or on timeout.
  std::optional<ClientResponse> request(std::string_view method, std::string_view target,
                                        const HeaderList& headers = {}, std::string_view body = {});
  std::optional<ClientResponse> get(std::string_view target, const HeaderList& headers = {}) {
    return request("GET", target, headers);
  }
  // Writes bytes as they are; false when the write failed.
  bool send_raw(std::string_view bytes);
  // Reads one response; `head` means the response has no body whatever it announces.
  std::optional<ClientResponse> read_response(bool head = false);
  // Waits until the server closes the connection (EOF or reset), discarding what arrives.
  // True when it closed within `timeout`.
  bool wait_closed(std::chrono::milliseconds timeout);

 private:
  bool fill();  // appends what arrives to buffer_; false on EOF, error or timeout
  bool read_until_header_end(std::size_t& end);

  int fd_ = -1;
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  std::string buffer_;
};

// One request on a fresh connection.
std::optional<ClientResponse> fetch(std::uint16_t port, std::string_view method,
                                    std::string_view target, const HeaderList& headers = {},
                                    std::string_view body = {});

}  // namespace cachekit::testing
