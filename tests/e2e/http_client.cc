#include "e2e/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>

namespace cachekit::testing {
namespace {

bool iequal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> ClientResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (iequal(n, name)) return v;
  }
  return std::nullopt;
}

std::size_t ClientResponse::count(std::string_view name) const {
  std::size_t n = 0;
  for (const auto& field : headers) n += iequal(field.first, name) ? 1 : 0;
  return n;
}

HttpClient::HttpClient(std::uint16_t port, std::chrono::milliseconds timeout)
    : port_(port), timeout_(timeout) {
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    ::close(fd_);
    fd_ = -1;
    throw std::runtime_error("connect to port " + std::to_string(port) + ": " + std::strerror(err));
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

HttpClient::~HttpClient() {
  if (fd_ >= 0) ::close(fd_);
}

HttpClient::HttpClient(HttpClient&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      port_(other.port_),
      timeout_(other.timeout_),
      buffer_(std::move(other.buffer_)) {}

bool HttpClient::send_raw(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::optional<ClientResponse> HttpClient::request(std::string_view method, std::string_view target,
                                                  const HeaderList& headers,
                                                  std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  bool has_host = false;
  for (const auto& [name, value] : headers) {
    has_host = has_host || iequal(name, "Host");
    out.append(name).append(": ").append(value).append("\r\n");
  }
  if (!has_host) out.append("Host: 127.0.0.1:").append(std::to_string(port_)).append("\r\n");
  if (!body.empty()) out.append("Content-Length: ").append(std::to_string(body.size())) += "\r\n";
  out.append("\r\n").append(body);
  if (!send_raw(out)) return std::nullopt;
  return read_response(method == "HEAD");
}

bool HttpClient::fill() {
  pollfd p{fd_, POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout_.count()));
  if (ready <= 0) return false;
  char chunk[16384];
  ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
  if (n <= 0) return false;
  buffer_.append(chunk, static_cast<std::size_t>(n));
  return true;
}

bool HttpClient::read_until_header_end(std::size_t& end) {
  for (;;) {
    end = buffer_.find("\r\n\r\n");
    if (end != std::string::npos) return true;
    if (!fill()) return false;
  }
}

std::optional<ClientResponse> HttpClient::read_response(bool head) {
  std::size_t end = 0;
  if (!read_until_header_end(end)) return std::nullopt;
  std::string_view block(buffer_.data(), end);
  ClientResponse response;
  auto line_end = block.find("\r\n");
  std::string_view status_line = block.substr(0, line_end);
  if (status_line.size() < 12 || !status_line.starts_with("HTTP/1.")) return std::nullopt;
  std::from_chars(status_line.data() + 9, status_line.data() + 12, response.status);
  while (line_end != std::string_view::npos) {
    block.remove_prefix(line_end + 2);
    line_end = block.find("\r\n");
    std::string_view line = block.substr(0, line_end);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    response.headers.emplace_back(std::string(line.substr(0, colon)),
                                  std::string(trim(line.substr(colon + 1))));
  }
  buffer_.erase(0, end + 4);
  bool bodiless = head || response.status < 200 || response.status == 204 || response.status == 304;
  if (bodiless) return response;
  if (auto coding = response.header("Transfer-Encoding"); coding && *coding == "chunked") {
    // Chunk sizes, chunks, the last chunk; an answer cut before the last chunk is nullopt.
    for (;;) {
      std::size_t line;
      while ((line = buffer_.find("\r\n")) == std::string::npos) {
        if (!fill()) return std::nullopt;
      }
      std::size_t size = 0;
      auto [ptr, ec] = std::from_chars(buffer_.data(), buffer_.data() + line, size, 16);
      if (ec != std::errc() || ptr == buffer_.data()) return std::nullopt;
      buffer_.erase(0, line + 2);
      while (buffer_.size() < size + 2) {
        if (!fill()) return std::nullopt;
      }
      if (size == 0) {  // no trailer fields are sent to these tests
        buffer_.erase(0, 2);
        return response;
      }
      response.body.append(buffer_, 0, size);
      buffer_.erase(0, size + 2);
    }
  }
  if (auto length = response.header("Content-Length")) {
    std::size_t want = std::stoul(*length);
    while (buffer_.size() < want) {
      if (!fill()) return std::nullopt;
    }
    response.body = buffer_.substr(0, want);
    buffer_.erase(0, want);
  } else {
    while (fill()) {
    }
    response.body = std::move(buffer_);
    buffer_.clear();
  }
  return response;
}

bool HttpClient::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char chunk[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return true;  // EOF, or a reset
  }
}

std::optional<ClientResponse> fetch(std::uint16_t port, std::string_view method,
                                    std::string_view target, const HeaderList& headers,
                                    std::string_view body) {
  HttpClient client(port);
  return client.request(method, target, headers, body);
}

}  // namespace cachekit::testing
