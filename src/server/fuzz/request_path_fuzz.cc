// libFuzzer target for the whole request path: arbitrary bytes go to a real cachekit server
// over a loopback connection and through everything a client reaches — Beast's parser, the
// request budget and framing checks, the Host allow-list, the router (append-slash redirects,
// path parameters, 404/405), a locmem page cache (hits served on the io thread, misses on the
// handler pool) and the response writer. One server is started per fuzzing process; each input
// is one connection: send the bytes, half-close, read until the server closes.
//
// Beyond "no crash, no sanitizer report" it checks that every answer is a well-formed
// HTTP/1.1 status line and that the server closes the connection within a bound (a hang or a
// connection the server forgets is a finding).
//
// Build: see src/server/CMakeLists.txt (CACHEKIT_FUZZ=ON, clang only).

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

#include "cachekit/backends/locmem.h"
#include "cachekit/cache.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/server/server.h"

namespace {

using namespace std::chrono_literals;
namespace http = cachekit::http;

void require(bool ok) {
  if (!ok) __builtin_trap();
}

cachekit::server::Server& fuzzed_server() {
  static cachekit::Cache cache(cachekit::make_locmem_backend());
  static cachekit::server::Server* server = [] {
    cachekit::server::ServerOptions o;
    o.port = 0;
    o.io_threads = 1;
    o.handler_threads = 1;
    o.access_log = false;
    o.read_timeout = 1s;
    o.header_timeout = 1s;
    o.max_header_bytes = 4096;
    o.max_body_bytes = 8192;
    o.allowed_hosts = {"*"};  // let every Host reach the page cache's keys
    auto* s = new cachekit::server::Server(o);
    s->router().get("/", [](http::Request&) { return http::Response::text("home"); });
    s->router().get("/page/{id}/", http::cache_page(60s,
                                                    [](http::Request& r) {
                                                      auto response = http::Response::text(
                                                          "page " + r.path_params["id"]);
                                                      if (r.query_param("vary"))
                                                        response.headers.set("Vary", "Accept");
                                                      return response;
                                                    },
                                                    {.cache = &cache}));
    s->router().post("/echo/", [](http::Request& r) { return http::Response::text(r.body); });
    s->start();
    return s;
  }();
  return *server;
}

int connect_to(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  require(fd >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  require(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
  return fd;
}

// Sends while draining what the server answers (a pipelined input can fill both directions).
void exchange(int fd, const std::uint8_t* data, std::size_t size, std::string& received) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  bool half_closed = false;
  char chunk[16384];
  for (;;) {
    require(std::chrono::steady_clock::now() < deadline);  // the server never closed
    pollfd p{fd, static_cast<short>(POLLIN | (half_closed ? 0 : POLLOUT)), 0};
    require(::poll(&p, 1, 5000) > 0);
    if ((p.revents & POLLOUT) != 0 && !half_closed) {
      ssize_t n = size == 0 ? 0 : ::send(fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        data += n;
        size -= static_cast<std::size_t>(n);
      }
      if (size == 0 || n < 0) {
        ::shutdown(fd, SHUT_WR);
        half_closed = true;
      }
    }
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      ssize_t n = ::recv(fd, chunk, sizeof chunk, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN)) return;  // closed (or reset after an error)
      if (n > 0) received.append(chunk, static_cast<std::size_t>(n));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto& server = fuzzed_server();
  int fd = connect_to(server.port());
  std::string received;
  exchange(fd, data, size, received);
  ::close(fd);
  if (!received.empty()) {
    require(received.starts_with("HTTP/1.1 "));
    require(received.find("\r\n\r\n") != std::string::npos);
  }
  return 0;
}
