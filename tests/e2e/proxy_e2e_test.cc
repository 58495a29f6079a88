// The caching reverse proxy end to end: a real origin (a cachekit Server on loopback), the
// proxy (Upstreams + PageCache in reverse-proxy mode + Server) in front, and a client speaking
// HTTP over real sockets. Hits, forwarding rules (hop-by-hop fields, X-Forwarded-*),
// coalescing of concurrent misses, origin failures (502, 504, stale-if-error, failover between
// origins), PURGE and private pages.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cachekit/caches.h"
#include "cachekit/http/page_cache.h"
#include "cachekit/proxy/proxy.h"
#include "cachekit/server/server.h"
#include "e2e/http_client.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::ClientResponse;
using testing::fetch;

// A gate an origin handler waits at until the test opens it.
class Gate {
 public:
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// 3 MiB of a repeating pattern.
std::string big_body() {
  std::string body(3 * 1024 * 1024, ' ');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + i % 26);
  return body;
}

// big_body() in 64 KiB pieces of unknown total length (so the origin sends it chunked); the
// source throws once `fail_at` bytes are out (0: never).
class Pieces final : public http::BodyStream {
 public:
  explicit Pieces(std::size_t fail_at) : body_(big_body()), fail_at_(fail_at) {}
  bool next(std::string& piece) override {
    if (fail_at_ != 0 && at_ >= fail_at_) throw std::runtime_error("source died");
    if (at_ >= body_.size()) return false;
    piece = body_.substr(at_, 64 * 1024);
    at_ += piece.size();
    return true;
  }
  [[nodiscard]] std::optional<std::uint64_t> length() const noexcept override {
    return std::nullopt;
  }

 private:
  std::string body_;
  std::size_t at_ = 0;
  std::size_t fail_at_;
};

// An origin server with a few pages; counts the calls of each.
class Origin {
 public:
  explicit Origin(std::string name) : name_(std::move(name)) {
    auto& r = server_.router();
    r.get("/cached", [this](http::Request&) {
      int n = ++cached_calls;
      auto response = http::Response::text(name_ + " cached " + std::to_string(n));
      response.headers.set("Cache-Control", "max-age=60");
      return response;
    });
    r.get("/short", [this](http::Request&) {
      ++short_calls;
      auto response = http::Response::text(name_ + " short");
      // Stale at once, kept to be revalidated (it has a validator) or to stand in for errors.
      response.headers.set("Cache-Control", "max-age=0, stale-if-error=600");
      response.headers.set("ETag", "\"s1\"");
      return response;
    });
    r.get("/gated", [this](http::Request&) {
      ++gated_calls;
      gate.wait();
      auto response = http::Response::text("gated");
      response.headers.set("Cache-Control", "max-age=60");
      return response;
    });
    r.get("/private", [this](http::Request& request) {
      ++private_calls;
      auto response =
          http::Response::text("for " + std::string(request.headers.get("X-User").value_or("?")));
      response.headers.set("Cache-Control", "private, max-age=60");
      return response;
    });
    r.get("/headers", [](http::Request& request) {
      std::string seen;
      for (const auto& [name, value] : request.headers) seen += name + ": " + value + "\n";
      auto response = http::Response::text(seen);
      // (The origin's own server drops Connection and Keep-Alive; these it passes on.)
      response.headers.set("Upgrade", "h2c");
      response.headers.set("Proxy-Authenticate", "Basic realm=\"origin\"");
      return response;
    });
    r.post("/cached", [](http::Request&) { return http::Response::text("posted"); });
    // 3 MiB, by Content-Length; and 3 MiB chunked (a stream of unknown length), whose source
    // fails after 512 KiB with ?fail=early, after 2 MiB with ?fail=late.
    r.get("/big", [](http::Request&) {
      auto response = http::Response::text(big_body());
      response.headers.set("Cache-Control", "max-age=60");
      return response;
    });
    r.get("/chunked", [](http::Request& request) {
      http::Response response;
      response.headers.set("Cache-Control", "max-age=60");
      std::size_t fail_at = request.query == "fail=early"  ? 512 * 1024
                            : request.query == "fail=late" ? 2 * 1024 * 1024
                                                           : 0;
      response.stream = std::make_shared<Pieces>(fail_at);
      return response;
    });
    server_.start();
  }
  ~Origin() { stop(); }
  void stop() {
    if (!stopped_.exchange(true)) server_.stop();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }

  std::atomic<int> cached_calls{0}, short_calls{0}, gated_calls{0}, private_calls{0};
  Gate gate;

 private:
  std::string name_;
  server::Server server_{
      {.port = 0, .handler_threads = 32, .allowed_hosts = {"*"}, .access_log = false}};
  std::atomic<bool> stopped_{false};
};

class Proxy {
 public:
  Proxy(std::vector<std::string> origins, proxy::ProxyOptions options = {},
        std::chrono::milliseconds response_timeout = 10s, std::chrono::seconds stale_if_error = 0s,
        std::size_t stream_above = std::size_t{1} << 20)
      : caches_(Caches::from_toml("[caches.default]\nbackend = \"locmem\"\n"
                                  "options = { max_entries = 1000 }\n",
                                  "proxy_e2e_test")),
        upstreams_({.origins = std::move(origins),
                    .connect_timeout = 500ms,
                    .response_timeout = response_timeout,
                    .stream_above = stream_above,
                    .health_path = ""}),
        page_cache_(std::make_shared<const http::PageCache>(
            http::PageCacheOptions{.cache = &caches_.at("default"),
                                   .default_timeout = 0s,
                                   .stale_if_error = stale_if_error,
                                   .reverse_proxy = true})) {
    server_.router().fallback(proxy::caching_handler(upstreams_, page_cache_, std::move(options)));
    server_.start();
  }
  ~Proxy() { server_.stop(); }
  std::uint16_t port() const { return server_.port(); }
  const http::PageCache& page_cache() const { return *page_cache_; }
  proxy::Upstreams& upstreams() { return upstreams_; }

 private:
  Caches caches_;
  proxy::Upstreams upstreams_;
  std::shared_ptr<const http::PageCache> page_cache_;
  server::Server server_{{.port = 0,
                          .handler_threads = 64,
                          .allowed_hosts = {"*"},
                          .access_log = false,
                          .metrics_path = "",
                          .router = {.append_slash = false}}};
};

ClientResponse must_get(std::uint16_t port, std::string_view target,
                        const testing::HeaderList& headers = {}) {
  auto r = fetch(port, "GET", target, headers);
  EXPECT_TRUE(r.has_value()) << target;
  return r.value_or(ClientResponse{});
}

TEST(ProxyE2E, ASecondRequestIsAHitWithAgeAndTheOriginIsCalledOnce) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  auto first = must_get(proxy.port(), "/cached");
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "o1 cached 1");
  EXPECT_NE(first.header("Cache-Status").value_or("").find("fwd=uri-miss; stored"),
            std::string::npos);
  auto second = must_get(proxy.port(), "/cached");
  EXPECT_EQ(second.body, "o1 cached 1");
  EXPECT_NE(second.header("Cache-Status").value_or("").find("hit"), std::string::npos);
  EXPECT_TRUE(second.header("Age").has_value());
  EXPECT_EQ(second.header("Cache-Control"), "max-age=60");
  EXPECT_EQ(origin.cached_calls.load(), 1);
}

TEST(ProxyE2E, HopByHopFieldsStopAtTheProxyBothWays) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  auto r = must_get(proxy.port(), "/headers",
                    {{"Connection", "keep-alive, X-Client-Hop"},
                     {"X-Client-Hop", "secret"},
                     {"Proxy-Authorization", "Basic eDp5"},
                     {"TE", "trailers"},
                     {"X-End-To-End", "kept"}});
  EXPECT_EQ(r.body.find("X-Client-Hop"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("Proxy-Authorization"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("TE:"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-End-To-End: kept"), std::string::npos) << r.body;
  EXPECT_FALSE(r.header("Upgrade").has_value());
  EXPECT_FALSE(r.header("Proxy-Authenticate").has_value());
}

TEST(ProxyForwarding, FieldsNamedByConnectionAreHopByHopToo) {
  http::Headers headers;
  headers.add("Connection", "close, X-Hop");
  headers.add("connection", "X-Other");
  headers.add("X-Hop", "1");
  headers.add("x-other", "2");
  headers.add("Transfer-Encoding", "chunked");
  headers.add("X-Kept", "3");
  proxy::strip_hop_by_hop(headers);
  ASSERT_EQ(headers.size(), 1U);
  EXPECT_EQ(headers.get("X-Kept"), "3");
}

TEST(ProxyE2E, XForwardedFieldsComeFromTheConnectionUnlessTrusted) {
  Origin origin("o1");
  const testing::HeaderList spoofed = {
      {"X-Forwarded-For", "6.6.6.6"}, {"X-Forwarded-Proto", "https"}, {"Host", "shop.example"}};
  {
    Proxy proxy({origin.address()});
    auto r = must_get(proxy.port(), "/headers", spoofed);
    EXPECT_NE(r.body.find("X-Forwarded-For: 127.0.0.1\n"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("X-Forwarded-Proto: http\n"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("X-Forwarded-Host: shop.example\n"), std::string::npos) << r.body;
    EXPECT_EQ(r.body.find("6.6.6.6"), std::string::npos) << r.body;
  }
  Proxy trusting({origin.address()}, {.trust_forwarded = true});
  auto r = must_get(trusting.port(), "/headers", spoofed);
  EXPECT_NE(r.body.find("X-Forwarded-For: 6.6.6.6, 127.0.0.1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("X-Forwarded-Proto: https\n"), std::string::npos) << r.body;
}

TEST(ProxyE2E, ConcurrentMissesOfOnePageMakeOneOriginCall) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  constexpr int kClients = 20;
  std::latch started(kClients);
  std::vector<std::thread> clients;
  std::atomic<int> answered{0};
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&] {
      started.count_down();
      auto r = fetch(proxy.port(), "GET", "/gated");
      if (r && r->status == 200 && r->body == "gated") ++answered;
    });
  }
  started.wait();
  // Open the origin once every other request waits for the first one's answer.
  while (proxy.page_cache().coalesced_waiters() < kClients - 1) std::this_thread::yield();
  origin.gate.open();
  for (auto& t : clients) t.join();
  EXPECT_EQ(answered.load(), kClients);
  EXPECT_EQ(origin.gated_calls.load(), 1);
}

TEST(ProxyE2E, AnUnreachableOriginIs502AndAStoredPageStandsInWithinStaleIfError) {
  auto origin = std::make_unique<Origin>("o1");
  Proxy proxy({origin->address()}, {}, 10s);
  auto fresh = must_get(proxy.port(), "/short");
  EXPECT_EQ(fresh.body, "o1 short");
  origin->stop();
  auto stale = must_get(proxy.port(), "/short");
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, "o1 short");
  EXPECT_NE(stale.header("Cache-Status").value_or("").find("stale-if-error"), std::string::npos)
      << stale.header("Cache-Status").value_or("");
  auto never_stored = must_get(proxy.port(), "/cached");
  EXPECT_EQ(never_stored.status, 502);
}

TEST(ProxyE2E, AnOriginThatDoesNotAnswerInTimeIs504) {
  Origin origin("o1");
  Proxy proxy({origin.address()}, {}, 300ms);
  auto r = must_get(proxy.port(), "/gated");
  EXPECT_EQ(r.status, 504);
  EXPECT_NE(r.header("Cache-Status").value_or("").find("origin-timeout"), std::string::npos);
  origin.gate.open();
}

TEST(ProxyE2E, RequestsAlternateBetweenOriginsAndAvoidOneThatIsDown) {
  Origin a("a");
  auto b = std::make_unique<Origin>("b");
  Proxy proxy({a.address(), b->address()});
  must_get(proxy.port(), "/private", {{"X-User", "1"}});
  must_get(proxy.port(), "/private", {{"X-User", "2"}});
  EXPECT_EQ(a.private_calls.load(), 1);
  EXPECT_EQ(b->private_calls.load(), 1);
  b->stop();
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(must_get(proxy.port(), "/private", {{"X-User", "3"}}).status, 200);
  }
  EXPECT_EQ(a.private_calls.load(), 5);
  auto states = proxy.upstreams().states();
  ASSERT_EQ(states.size(), 2U);
  EXPECT_TRUE(states[0].up);
  EXPECT_FALSE(states[1].up);
}

TEST(ProxyE2E, PrivatePagesAreNeverSharedBetweenUsers) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  EXPECT_EQ(must_get(proxy.port(), "/private", {{"X-User", "ann"}}).body, "for ann");
  EXPECT_EQ(must_get(proxy.port(), "/private", {{"X-User", "bob"}}).body, "for bob");
  EXPECT_EQ(origin.private_calls.load(), 2);
}

TEST(ProxyE2E, PurgeFromAnAllowedClientRemovesThePageAndIsOtherwiseForwarded) {
  Origin origin("o1");
  Proxy proxy({origin.address()}, {.purge_allowed_clients = {"loopback"}});
  must_get(proxy.port(), "/cached");
  auto purge = fetch(proxy.port(), "PURGE", "/cached");
  ASSERT_TRUE(purge.has_value());
  EXPECT_EQ(purge->status, 200);
  EXPECT_EQ(must_get(proxy.port(), "/cached").body, "o1 cached 2");
  EXPECT_EQ(fetch(proxy.port(), "PURGE", "/never")->status, 404);

  Proxy closed({origin.address()}, {.purge_allowed_clients = {"10.0.0.1"}});
  EXPECT_EQ(fetch(closed.port(), "PURGE", "/cached")->status, 403);
}

TEST(ProxyE2E, ASuccessfulPostInvalidatesTheStoredPage) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  must_get(proxy.port(), "/cached");
  auto post = fetch(proxy.port(), "POST", "/cached", {}, "x=1");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->body, "posted");
  EXPECT_EQ(must_get(proxy.port(), "/cached").body, "o1 cached 2");
}

TEST(ProxyE2E, ABodyOverTheStreamingThresholdArrivesWholeAndIsNotStored) {
  Origin origin("o1");
  Proxy proxy({origin.address()});  // streams above 1 MiB
  for (const char* path : {"/big", "/chunked"}) {
    for (int i = 0; i < 2; ++i) {
      auto r = must_get(proxy.port(), path);
      EXPECT_EQ(r.status, 200) << path;
      EXPECT_TRUE(r.body == big_body()) << path << ": " << r.body.size() << " bytes";
      EXPECT_NE(r.header("Cache-Status").value_or("").find("detail=size"), std::string::npos)
          << path << ": " << r.header("Cache-Status").value_or("");
    }
  }
  auto head = fetch(proxy.port(), "HEAD", "/big");
  ASSERT_TRUE(head.has_value());
  EXPECT_EQ(head->header("Content-Length"), std::to_string(big_body().size()));
}

TEST(ProxyE2E, AnOriginThatStopsMidBodyLeavesTheClientATruncatedAnswer) {
  Origin origin("o1");
  Proxy proxy({origin.address()});
  // Before the proxy sent anything (the body was still under the threshold): a 502.
  EXPECT_EQ(must_get(proxy.port(), "/chunked?fail=early").status, 502);
  // After: the proxy closes the connection before the last chunk, no complete-looking answer.
  testing::HttpClient client(proxy.port());
  EXPECT_FALSE(client.get("/chunked?fail=late").has_value());
  EXPECT_EQ(must_get(proxy.port(), "/cached").status, 200);  // the proxy goes on serving
}

// An origin on a raw socket that answers the first request of each connection (keep-alive),
// then reads the next one and closes the connection without answering: what a server that
// dies mid-request, or closes an idle connection as the request arrives, looks like.
class HangUpOrigin {
 public:
  HangUpOrigin() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 16);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~HangUpOrigin() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_.load(); }

 private:
  // Reads one request head (these tests send no bodies but POST's three bytes, read with it).
  bool read_request(int client) {
    std::string seen;
    char buffer[4096];
    while (seen.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      seen.append(buffer, static_cast<std::size_t>(n));
    }
    ++requests_;
    return true;
  }
  void serve() {
    for (;;) {
      int client = ::accept(fd_, nullptr, nullptr);
      if (client < 0) return;
      if (read_request(client)) {
        std::string_view answer =
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nCache-Control: no-store\r\n\r\nok";
        ::send(client, answer.data(), answer.size(), MSG_NOSIGNAL);
        read_request(client);  // the next request on this connection: no answer
      }
      ::close(client);
    }
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> requests_{0};
  std::thread thread_;
};

TEST(ProxyE2E, ARequestUnansweredOnAPooledConnectionIsSentAgainOnlyWhenIdempotent) {
  HangUpOrigin origin;
  Proxy proxy({origin.address()});
  EXPECT_EQ(must_get(proxy.port(), "/a").body, "ok");  // leaves a pooled connection
  // GET: unanswered on the pooled connection, sent again on a new one, answered there.
  EXPECT_EQ(must_get(proxy.port(), "/b").body, "ok");
  EXPECT_EQ(origin.requests(), 3);
  // POST: unanswered on the pooled connection; the origin may have acted on it: 502, once.
  auto post = fetch(proxy.port(), "POST", "/c", {}, "x=1");
  ASSERT_TRUE(post.has_value());
  EXPECT_EQ(post->status, 502);
  EXPECT_EQ(origin.requests(), 4);
}

}  // namespace
}  // namespace cachekit
