// The only translation unit of src/server that includes Boost.Asio and Boost.Beast (each costs
// ~15 s and ~0.6 GB to compile), so everything else here stays Boost-free. (A backend's
// AsyncReads run on the io_contexts made here: the Redis one is built on Asio too.)
//
// Shape, top to bottom: start() opens the acceptor and starts one io_context per io thread;
// accept_loop() hands each connection to a worker round-robin; session() serves one connection:
// wait for bytes (idle timeout) → read the request with Beast's parser (read timeout, header and
// body limits) → answer it (on the io thread when that is cheap — a page hit from process memory,
// or from a shared store read in one pipelined round trip that the io thread drives — else on
// the handler pool) →
// write the head we serialize ourselves plus the body bytes as a second buffer (one writev, no
// copy of the body) → repeat while keep-alive. sweep() enforces the timeouts; stop() drains.
//
// Longer than the house's ~500 lines on purpose: everything that touches an Asio or Beast type
// is here, so that one translation unit pays their compile cost instead of two or three. What
// needs neither lives in wire.cc, router.cc, metrics.cc and handler_pool.cc.

#include "cachekit/server/server.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <condition_variable>
#include <csignal>
#include <iterator>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cachekit/cache.h"
#include "core/log.h"
#include "server/handler_pool.h"
#include "server/request_checks.h"
#include "server/wire.h"

namespace cachekit::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;
using ErrorCode = boost::system::error_code;
using RequestParser = bhttp::request_parser<bhttp::string_body>;

// Errors come back as values: exceptions for every closed connection would cost more than the
// request itself.
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kReadChunk = 4096;
constexpr std::chrono::milliseconds kLinger{1000};

enum class Phase : std::uint8_t { kIdle, kReading, kHandling, kWriting, kClosing };

enum class ReadOutcome : std::uint8_t {
  kComplete,
  kClosed,
  kTimedOut,
  kHeaderTooLarge,
  kBodyTooLarge,
  kMalformed,
  kBadFraming,         // RFC 9112 §6 violations that smuggling relies on → 400
  kUnsupportedCoding,  // a transfer coding other than chunked → 501
};

// One client connection. It lives in its session coroutine's frame and is linked into its
// worker's list, which only that worker's thread touches: the sweeper and the shutdown reach
// connections without locks.
struct Connection {
  explicit Connection(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  SteadyClock::time_point deadline = SteadyClock::time_point::max();
  Phase phase = Phase::kIdle;
  bool timed_out = false;  // the sweeper cancelled the pending operation
  Connection* prev = nullptr;
  Connection* next = nullptr;
};

struct Worker {
  // Destroying the io_context destroys the suspended sessions, whose destructors unlink their
  // connection: the list must outlive the context (declared first), and they must not touch
  // the timer, which is destroyed before the context (hence tearing_down).
  Connection* head = nullptr;
  bool stopping = false;
  bool tearing_down = false;
  asio::io_context ioc{1};
  asio::steady_timer sweep_timer{ioc};
  std::thread thread;
  // Per page-cache store, its non-blocking reads on this io thread (nullptr: it has none).
  // After the context: closed before it goes.
  std::unordered_map<const Cache*, std::unique_ptr<AsyncReads>> reads;

  AsyncReads* reads_for(const Cache& cache) {
    auto it = reads.find(&cache);
    if (it == reads.end()) it = reads.emplace(&cache, cache.async_reads(ioc)).first;
    return it->second.get();
  }

  ~Worker() { tearing_down = true; }
  void link(Connection& c) noexcept {
    c.next = head;
    if (head != nullptr) head->prev = &c;
    head = &c;
  }
  void unlink(Connection& c) noexcept {
    (c.prev != nullptr ? c.prev->next : head) = c.next;
    if (c.next != nullptr) c.next->prev = c.prev;
  }
};

// The per-connection state reused from one request to the next, so strings keep their capacity.
struct Exchange {
  http::Request request;
  std::string head;    // the serialized response head
  std::string remote;  // "address:port", only filled for the access log
  unsigned version = 11;
  bool head_request = false;
  std::size_t head_fields = 0;  // fields of the head; those after them are trailer fields
  std::size_t served = 0;       // requests answered on this connection
};

void fill_request(http::Request& r, bhttp::request<bhttp::string_body>& m,
                  std::size_t head_fields) {
  auto method = m.method_string();
  r.method.assign(method.data(), method.size());
  auto target = m.target();
  detail::split_target(std::string_view(target.data(), target.size()), r.path, r.query);
  // Headers has no clear(); assigning an empty one is O(n). (Erasing field by field by name
  // was a linear search per field: O(n^2) on the io thread for a head of many fields.)
  r.headers = http::Headers{};
  // Beast appends trailer fields to the same list: only the head's fields are request headers,
  // or a field sent after the body (X-Forwarded-For...) would pass for one.
  for (const auto& field : m) {
    if (head_fields-- == 0) break;
    auto name = field.name_string();
    auto value = field.value();
    r.headers.add(std::string_view(name.data(), name.size()),
                  std::string(value.data(), value.size()));
  }
  r.body = std::move(m.body());
  r.path_params.clear();
  if (auto id = r.headers.get("X-Request-Id"); id && detail::acceptable_request_id(*id)) {
    r.request_id.assign(*id);
  } else {
    detail::new_request_id(r.request_id);
  }
}

ReadOutcome classify(const ErrorCode& ec, const Connection& c) {
  if (!ec) return ReadOutcome::kComplete;
  if (c.timed_out) return ReadOutcome::kTimedOut;
  if (ec == bhttp::error::header_limit) return ReadOutcome::kHeaderTooLarge;
  if (ec == bhttp::error::body_limit) return ReadOutcome::kBodyTooLarge;
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    return ReadOutcome::kClosed;  // the client went away, possibly mid-request
  }
  if (ec == bhttp::error::buffer_overflow) return ReadOutcome::kHeaderTooLarge;
  if (ec.category() == make_error_code(bhttp::error::bad_method).category()) {
    return ReadOutcome::kMalformed;
  }
  return ReadOutcome::kClosed;  // a socket error: nobody to answer
}

http::Response error_response(ReadOutcome outcome) {
  switch (outcome) {
    case ReadOutcome::kTimedOut:
      return http::Response::text("Request Timeout", 408);
    case ReadOutcome::kHeaderTooLarge:
      return http::Response::text("Request Header Fields Too Large", 431);
    case ReadOutcome::kBodyTooLarge:
      return http::Response::text("Content Too Large", 413);
    case ReadOutcome::kUnsupportedCoding:
      return http::Response::text("Not Implemented", 501);
    default:
      return http::Response::text("Bad Request", 400);
  }
}

bool expects_continue(const bhttp::request<bhttp::string_body>& m) {
  auto it = m.find(bhttp::field::expect);
  return it != m.end() && beast::iequals(it->value(), "100-continue");
}

// RFC 9112 §6: the framing two parsers could read differently is refused, so that a proxy in
// front and this server never disagree on where a request ends (request smuggling). Beast
// already refuses a Transfer-Encoding after a chunked one and conflicting Content-Lengths.
ReadOutcome check_head(const bhttp::request<bhttp::string_body>& m, const RequestParser& parser) {
  const auto lengths = m.count(bhttp::field::content_length);
  const auto [te_first, te_last] = m.equal_range(bhttp::field::transfer_encoding);
  if (te_first != te_last) {
    if (lengths != 0 || std::next(te_first) != te_last || m.version() < 11) {
      return ReadOutcome::kBadFraming;
    }
    const auto value = te_first->value();
    const int verdict = detail::transfer_encoding_verdict({value.data(), value.size()});
    if (verdict == 501) return ReadOutcome::kUnsupportedCoding;
    if (verdict != 0 || !parser.chunked()) return ReadOutcome::kBadFraming;
  }
  if (lengths > 1) return ReadOutcome::kBadFraming;
  if (lengths == 1) {
    const auto value = m.find(bhttp::field::content_length)->value();
    if (!detail::plain_content_length({value.data(), value.size()})) {
      return ReadOutcome::kBadFraming;
    }
  }
  const auto hosts = m.count(bhttp::field::host);
  if (hosts > 1 || (hosts == 0 && m.version() >= 11)) return ReadOutcome::kBadFraming;
  return ReadOutcome::kComplete;
}

std::chrono::milliseconds sweep_tick(const ServerOptions& o) {
  auto shortest = std::min({o.read_timeout, o.idle_timeout, o.write_timeout, o.header_timeout});
  return std::clamp(shortest / 8, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
}

// The members of a Cache-Status value that other caches wrote (an upstream's, or a handler's).
// When this server's page cache saw the response, its own member is the last one (it appends
// after what it received) and is counted from Response::cache_status instead of its text.
std::string_view upstream_members(const http::Response& response, std::string_view value) {
  if (!response.cache_status) return value;
  auto comma = value.rfind(',');
  return comma == std::string_view::npos ? std::string_view() : value.substr(0, comma);
}

std::shared_ptr<spdlog::logger> access_logger() {
  if (auto existing = spdlog::get("cachekit.access")) return existing;
  try {
    return spdlog::stderr_logger_mt("cachekit.access");
  } catch (const spdlog::spdlog_ex&) {  // registered concurrently
    return spdlog::get("cachekit.access");
  }
}

}  // namespace

struct Server::Impl {
  explicit Impl(ServerOptions o) : options(std::move(o)), router(options.router) {}

  ServerOptions options;
  Router router;
  std::vector<std::pair<std::string, const Cache*>> watched;
  std::vector<std::function<std::string()>> metrics_sources;  // set before start()
  std::unique_ptr<Metrics> metrics;
  std::size_t metrics_route = 0;    // the metrics label of the /metrics endpoint itself
  std::size_t unmatched_route = 0;  // ... and of requests no route matched
  std::shared_ptr<spdlog::logger> access_log;
  std::chrono::milliseconds tick{250};

  Counter requests, answered_on_io, pool_attempts, rejected, rejected_connections;
  std::atomic<std::size_t> connections{0};
  std::size_t max_connections = 0;  // options.max_connections, or the RLIMIT_NOFILE default
  std::atomic<std::uint16_t> port{0};
  std::atomic<bool> stopping{false};

  std::mutex lifecycle_mutex;  // serialises start() and stop()
  bool started = false;
  bool stopped = false;
  std::mutex state_mutex;  // guards the two fields below; state_cv signals changes
  std::condition_variable state_cv;
  bool stop_requested = false;
  std::size_t exited_threads = 0;

  std::unique_ptr<detail::HandlerPool> pool;
  std::vector<std::unique_ptr<Worker>> workers;
  std::optional<tcp::acceptor> acceptor;  // on workers[0]
  std::optional<asio::signal_set> signals;
  std::size_t next_worker = 0;  // accept loop only

  void start();
  void build_metrics();
  void open_acceptor();
  void run_io_thread(Worker& w);
  void stop();
  void begin_shutdown(Worker& w);
  [[nodiscard]] std::vector<Sample> samples() const;
  // The /metrics text: the Metrics, the samples, then each added source's text.
  [[nodiscard]] std::string metrics_text() const {
    std::string text = metrics->render(samples());
    for (const auto& source : metrics_sources) text += source();
    return text;
  }

  asio::awaitable<void> accept_loop();
  asio::awaitable<void> sweep(Worker& w);
  asio::awaitable<void> session(Worker& w, tcp::socket socket);
  asio::awaitable<void> refuse(Worker& w, tcp::socket socket);
  asio::awaitable<bool> serve_one(Worker& w, Connection& c, beast::flat_buffer& buffer,
                                  Exchange& ex);
  asio::awaitable<bool> wait_for_bytes(Worker& w, Connection& c, beast::flat_buffer& buffer);
  asio::awaitable<ReadOutcome> read_request(Connection& c, beast::flat_buffer& buffer,
                                            RequestParser& parser, Exchange& ex);
  asio::awaitable<ReadOutcome> continue_if_expected(Connection& c, RequestParser& parser);
  asio::awaitable<void> answer_error(Connection& c, Exchange& ex, ReadOutcome outcome);
  asio::awaitable<http::Response> produce(Worker& w, Connection& c, Exchange& ex,
                                          std::size_t& route);
  // A page hit from a shared store, read without blocking in one round trip (AsyncReads).
  asio::awaitable<std::optional<http::Response>> hit_from_shared_store(Worker& w,
                                                                       const Resolution& r,
                                                                       const http::Request& req);
  bool metrics_allowed(Connection& c) const;
  [[nodiscard]] bool has_allowed_host(const http::Request& request) const;
  asio::awaitable<bool> write_streamed(Connection& c, Exchange& ex, const http::Response& response,
                                       detail::HeadParams params);
  // One piece of a streamed body (a chunk when `chunked`).
  asio::awaitable<bool> write_piece(Connection& c, std::string_view piece, bool chunked);
  asio::awaitable<bool> write_response(Connection& c, Exchange& ex, const http::Response& response,
                                       bool keep_alive);
  asio::awaitable<void> linger(Connection& c);
  template <class Job>
  auto on_pool(Job job);

  std::optional<http::Response> answer_on_io_thread(const Resolution& r, http::Request& req) const;
  http::Response run_user_code(const Resolution& r, http::Request& req) const;
  void finish(Connection& c, Exchange& ex, const http::Response& response, std::size_t route,
              SteadyClock::time_point started);
  void log_access(Connection& c, Exchange& ex, const http::Response& response,
                  SteadyClock::duration latency);
};

// ---- lifecycle ----

void Server::Impl::open_acceptor() {
  try {
    tcp::endpoint endpoint(asio::ip::make_address(options.address), options.port);
    acceptor.emplace(workers[0]->ioc);
    acceptor->open(endpoint.protocol());
    acceptor->set_option(tcp::acceptor::reuse_address(true));
    acceptor->bind(endpoint);
    acceptor->listen(asio::socket_base::max_listen_connections);
    port = acceptor->local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    acceptor.reset();
    throw std::system_error(std::error_code(e.code().value(), std::generic_category()),
                            "cachekit server: cannot listen on " + options.address + ":" +
                                std::to_string(options.port));
  }
}

// Route labels are fixed at start: the metrics table is indexed by route, then /metrics itself,
// then "unmatched".
void Server::Impl::build_metrics() {
  std::vector<std::string> labels;
  for (std::size_t i = 0; i < router.route_count(); ++i) {
    labels.emplace_back(router.route_pattern(i));
  }
  metrics_route = labels.size();
  labels.push_back(options.metrics_path.empty() ? "metrics" : options.metrics_path);
  unmatched_route = labels.size();
  metrics = std::make_unique<Metrics>(std::move(labels));
  for (const auto& [alias, cache] : watched) metrics->watch_cache(alias, *cache);
}

void Server::Impl::start() {
  std::lock_guard lock(lifecycle_mutex);
  if (started) throw std::logic_error("cachekit server: start() called twice");
  const std::size_t cores = std::max(1U, std::thread::hardware_concurrency());
  build_metrics();
  const std::size_t io_threads = options.io_threads == 0 ? cores : options.io_threads;
  for (std::size_t i = 0; i < io_threads; ++i) workers.push_back(std::make_unique<Worker>());
  try {
    open_acceptor();
  } catch (...) {
    workers.clear();
    throw;
  }
  if (options.access_log) access_log = access_logger();
  tick = sweep_tick(options);
  max_connections =
      options.max_connections == 0 ? detail::default_max_connections() : options.max_connections;
  pool = std::make_unique<detail::HandlerPool>(
      options.handler_threads == 0 ? 4 * cores : options.handler_threads, options.handler_queue);
  asio::co_spawn(workers[0]->ioc, accept_loop(), asio::detached);
  for (auto& w : workers) {
    asio::co_spawn(w->ioc, sweep(*w), asio::detached);
    w->thread = std::thread([this, &w = *w] { run_io_thread(w); });
  }
  started = true;
}

// run() returns when the context runs out of work: after a stop, once its connections, its
// sweeper and its jobs out on the pool are done.
void Server::Impl::run_io_thread(Worker& w) {
  for (;;) {
    try {
      w.ioc.run();
      break;
    } catch (const std::exception& e) {  // a bug in a completion handler: keep serving
      cachekit::detail::logger()->error("cachekit server: io thread: {}", e.what());
    }
  }
  std::lock_guard lock(state_mutex);
  ++exited_threads;
  state_cv.notify_all();
}

// Runs on the worker's own thread: idle keep-alive connections are closed now; the others
// finish their request and close because `stopping` turns keep-alive off.
void Server::Impl::begin_shutdown(Worker& w) {
  w.stopping = true;
  for (auto& [cache, reads] : w.reads) {
    if (reads) reads->close();  // its connection would keep the io_context running
  }
  for (Connection* c = w.head; c != nullptr; c = c->next) {
    ErrorCode ignored;
    if (c->phase == Phase::kIdle) c->socket.cancel(ignored);
  }
  if (w.head == nullptr) w.sweep_timer.cancel();
}

void Server::Impl::stop() {
  std::lock_guard lock(lifecycle_mutex);
  if (!started || stopped) return;
  stopping = true;
  asio::post(workers[0]->ioc, [this] {
    ErrorCode ignored;
    acceptor->close(ignored);
    if (signals) signals->cancel(ignored);
  });
  for (auto& w : workers) asio::post(w->ioc, [this, &w = *w] { begin_shutdown(w); });
  // Each io_context runs out of work once its connections, sweeper and pool jobs are done.
  bool drained = false;
  {
    std::unique_lock state(state_mutex);
    drained = state_cv.wait_for(state, options.shutdown_timeout,
                                [&] { return exited_threads == workers.size(); });
  }
  if (!drained) {
    cachekit::detail::logger()->warn(
        "cachekit server: shutdown timeout ({} ms) passed; closing remaining connections",
        options.shutdown_timeout.count());
    for (auto& w : workers) {
      asio::post(w->ioc, [&w = *w] {
        for (Connection* c = w.head; c != nullptr; c = c->next) {
          ErrorCode ignored;
          c->socket.close(ignored);
        }
        w.ioc.stop();
      });
    }
  }
  for (auto& w : workers) w->thread.join();
  pool->stop();  // handlers still running finish; their answers go nowhere
  signals.reset();
  acceptor.reset();
  workers.clear();  // destroys the io_contexts and any session they still held
  stopped = true;
}

// ---- accepting and timeouts ----

asio::awaitable<void> Server::Impl::accept_loop() {
  for (;;) {
    Worker& w = *workers[next_worker++ % workers.size()];
    auto [ec, socket] = co_await acceptor->async_accept(w.ioc, kNoThrow);
    if (ec) {
      if (ec == asio::error::operation_aborted || stopping) co_return;
      // Out of descriptors or memory: back off instead of spinning on the same error.
      cachekit::detail::logger()->warn("cachekit server: accept failed: {}", ec.message());
      asio::steady_timer pause(workers[0]->ioc, std::chrono::milliseconds(50));
      co_await pause.async_wait(kNoThrow);
      continue;
    }
    ErrorCode ignored;
    socket.set_option(tcp::no_delay(true), ignored);  // responses go out in one write anyway
    // Counted here, not in the session, so that a burst of accepts cannot overshoot the limit.
    if (connections.load(std::memory_order_relaxed) >= max_connections) {
      asio::co_spawn(w.ioc, refuse(w, std::move(socket)), asio::detached);
      continue;
    }
    connections.fetch_add(1, std::memory_order_relaxed);
    asio::co_spawn(w.ioc, session(w, std::move(socket)), asio::detached);
  }
}

// One timer per worker instead of one per connection operation: arming a timer per read and
// write costs a timer-queue update (and often a timerfd syscall) per request, while a sweep
// every `tick` costs nothing per request. Timeouts fire up to one tick late.
asio::awaitable<void> Server::Impl::sweep(Worker& w) {
  for (;;) {
    if (w.stopping && w.head == nullptr) co_return;
    w.sweep_timer.expires_after(tick);
    co_await w.sweep_timer.async_wait(kNoThrow);
    const auto now = SteadyClock::now();
    for (Connection* c = w.head; c != nullptr; c = c->next) {
      if (c->deadline > now) continue;
      c->timed_out = true;
      c->deadline = SteadyClock::time_point::max();
      ErrorCode ignored;
      c->socket.cancel(ignored);  // the pending read or write completes with operation_aborted
    }
  }
}

// ---- one connection ----

asio::awaitable<void> Server::Impl::session(Worker& w, tcp::socket socket) {
  Connection c(std::move(socket));
  struct Registration {
    Impl& impl;
    Worker& w;
    Connection& c;
    Registration(Impl& i, Worker& wk, Connection& cn) : impl(i), w(wk), c(cn) { w.link(c); }
    ~Registration() {
      w.unlink(c);
      impl.connections.fetch_sub(1, std::memory_order_relaxed);
      if (w.stopping && w.head == nullptr && !w.tearing_down) w.sweep_timer.cancel();
    }
  } registration(*this, w, c);
  beast::flat_buffer buffer;
  Exchange ex;
  {
    ErrorCode ec;
    const auto peer = c.socket.remote_endpoint(ec);
    if (!ec) {
      auto address = peer.address();
      if (address.is_v6() && address.to_v6().is_v4_mapped()) {
        address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
      }
      ex.request.client_address = address.to_string();
    }
  }
  try {
    while (co_await serve_one(w, c, buffer, ex)) {
    }
  } catch (const std::exception& e) {
    cachekit::detail::logger()->error("cachekit server: connection dropped: {}", e.what());
  }
  ErrorCode ignored;
  c.socket.shutdown(tcp::socket::shutdown_both, ignored);
  c.socket.close(ignored);
}

// Over the connection limit: a 503 without reading the request, then a lingering close. The
// connection is swept like any other (write timeout, linger) but not counted: it holds its
// descriptor for at most write_timeout + kLinger.
asio::awaitable<void> Server::Impl::refuse(Worker& w, tcp::socket socket) {
  Connection c(std::move(socket));
  w.link(c);
  Exchange ex;
  auto response = http::Response::text("Service Unavailable", 503);
  response.headers.set("Retry-After", std::to_string(options.retry_after.count()));
  detail::new_request_id(ex.request.request_id);
  ex.request.method = "-";
  ex.request.path = "-";
  rejected_connections.add();
  if (co_await write_response(c, ex, response, false)) co_await linger(c);
  ErrorCode ignored;
  c.socket.close(ignored);
  w.unlink(c);
  if (w.stopping && w.head == nullptr && !w.tearing_down) w.sweep_timer.cancel();
}

asio::awaitable<bool> Server::Impl::serve_one(Worker& w, Connection& c, beast::flat_buffer& buffer,
                                              Exchange& ex) {
  if (buffer.size() == 0 && !co_await wait_for_bytes(w, c, buffer)) co_return false;
  RequestParser parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  parser.body_limit(options.max_body_bytes);
  ReadOutcome outcome = co_await read_request(c, buffer, parser, ex);
  if (outcome != ReadOutcome::kComplete) {
    if (outcome != ReadOutcome::kClosed) co_await answer_error(c, ex, outcome);
    co_return false;
  }
  const auto started = SteadyClock::now();
  c.phase = Phase::kHandling;
  c.deadline = SteadyClock::time_point::max();  // handlers may block; they are not timed out
  auto& message = parser.get();
  ex.version = message.version();
  ex.head_request = message.method() == bhttp::verb::head;
  const bool client_keeps_alive = message.keep_alive();
  fill_request(ex.request, message, ex.head_fields);
  std::size_t route = unmatched_route;
  // The Host check comes before routing and caching: a forged Host never mints a cache key.
  // (No co_await inside a conditional expression: g++ 12 miscompiles it.)
  http::Response response;
  if (has_allowed_host(ex.request)) {
    response = co_await produce(w, c, ex, route);
  } else {
    response = http::Response::text("Bad Request: Host not allowed", 400);
  }
  ++ex.served;
  const bool keep_alive =
      client_keeps_alive && !w.stopping &&
      (options.max_requests_per_connection == 0 || ex.served < options.max_requests_per_connection);
  const bool written = co_await write_response(c, ex, response, keep_alive);
  finish(c, ex, response, route, started);
  co_return written&& keep_alive;
}

// Asio's reactor already skips the speculative recv() after a short read (the socket was
// drained), so this costs one recv() per request, done when epoll reports the next request.
asio::awaitable<bool> Server::Impl::wait_for_bytes(Worker& w, Connection& c,
                                                   beast::flat_buffer& buffer) {
  if (w.stopping) co_return false;
  c.phase = Phase::kIdle;
  c.deadline = SteadyClock::now() + options.idle_timeout;
  auto [ec, n] = co_await c.socket.async_read_some(buffer.prepare(kReadChunk), kNoThrow);
  if (ec) co_return false;  // idle timeout, shutdown, or the client closed
  buffer.commit(n);
  co_return true;
}

// From the first byte of a request, its head must arrive within header_timeout and the whole
// of it within read_timeout: a client trickling bytes cannot extend its stay.
//
// One budget, max_header_bytes, bounds everything of a request that is not body: the head,
// every chunk-size line with its extensions, and the trailer. Beast bounds the head alone, and
// keeps an incomplete chunk line or trailer in the buffer however long it grows, so the
// budget counts the bytes the parser consumed that are not body, plus those it is still
// waiting on.
asio::awaitable<ReadOutcome> Server::Impl::read_request(Connection& c, beast::flat_buffer& buffer,
                                                        RequestParser& parser, Exchange& ex) {
  c.phase = Phase::kReading;
  const auto first_byte = SteadyClock::now();
  const auto read_deadline = first_byte + options.read_timeout;
  c.deadline = std::min(read_deadline, first_byte + options.header_timeout);
  std::size_t consumed = 0;
  for (;;) {
    ErrorCode ec;
    while (buffer.size() != 0 && !parser.is_done()) {
      const bool header_was_done = parser.is_header_done();
      const std::size_t n = parser.put(buffer.data(), ec);
      buffer.consume(n);
      consumed += n;
      if (ec || n == 0) break;
      if (!header_was_done && parser.is_header_done()) {
        auto& m = parser.get();
        ex.head_fields = static_cast<std::size_t>(std::distance(m.begin(), m.end()));
        if (auto verdict = check_head(m, parser); verdict != ReadOutcome::kComplete) {
          co_return verdict;
        }
        c.deadline = read_deadline;
        if (!parser.is_done()) {
          if (auto sent = co_await continue_if_expected(c, parser);
              sent != ReadOutcome::kComplete) {
            co_return sent;
          }
        }
      }
    }
    if (ec == bhttp::error::need_more) ec = {};
    if (ec) co_return classify(ec, c);
    if (parser.is_done()) co_return ReadOutcome::kComplete;
    const std::size_t body = parser.is_header_done() ? parser.get().body().size() : 0;
    if (consumed - body + buffer.size() > options.max_header_bytes) {
      co_return ReadOutcome::kHeaderTooLarge;
    }
    auto [read_ec, n] = co_await c.socket.async_read_some(buffer.prepare(kReadChunk), kNoThrow);
    if (read_ec) co_return c.timed_out ? ReadOutcome::kTimedOut : ReadOutcome::kClosed;
    buffer.commit(n);
  }
}

asio::awaitable<ReadOutcome> Server::Impl::continue_if_expected(Connection& c,
                                                                RequestParser& parser) {
  if (!expects_continue(parser.get())) co_return ReadOutcome::kComplete;
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  auto [ec, written] = co_await asio::async_write(c.socket, asio::buffer(kContinue), kNoThrow);
  co_return ec ? classify(ec, c) : ReadOutcome::kComplete;
}

bool Server::Impl::has_allowed_host(const http::Request& request) const {
  auto host = request.headers.get("Host");
  return !host || detail::host_allowed(*host, options.allowed_hosts);  // HTTP/1.0: no Host
}

asio::awaitable<void> Server::Impl::answer_error(Connection& c, Exchange& ex, ReadOutcome outcome) {
  const auto started = SteadyClock::now();
  http::Response response = error_response(outcome);
  c.timed_out = false;  // the 408 still deserves its own (short) write window
  ex.head_request = false;
  ex.request.method = "-";
  ex.request.path = "-";
  ex.request.query.clear();
  detail::new_request_id(ex.request.request_id);
  co_await write_response(c, ex, response, false);
  finish(c, ex, response, unmatched_route, started);
  co_await linger(c);
}

// Closing a socket whose receive queue still holds request bytes makes the kernel send RST,
// which can destroy the error response before the client reads it. So: send FIN, then read and
// discard until the client closes too or kLinger passes (nginx's lingering close).
asio::awaitable<void> Server::Impl::linger(Connection& c) {
  c.phase = Phase::kClosing;
  ErrorCode ignored;
  c.socket.shutdown(tcp::socket::shutdown_send, ignored);
  c.deadline = SteadyClock::now() + kLinger;
  std::array<char, 4096> sink;
  for (;;) {
    auto [ec, n] = co_await c.socket.async_read_some(asio::buffer(sink), kNoThrow);
    if (ec) break;
  }
}

// ---- answering ----

// The answers that run no user code: page-cache hits from an in-process store, and the router's
// own 404/405/301/OPTIONS. Middleware must see every response, so with middleware there are
// none.
std::optional<http::Response> Server::Impl::answer_on_io_thread(const Resolution& r,
                                                                http::Request& req) const {
  req.page_lookup.reset();  // a previous request's on this connection
  if (router.has_middleware()) return std::nullopt;
  if (r.kind != Resolution::Kind::kFound) return Router::own_answer(r);
  const auto& page_cache = r.endpoint->page_cache;
  if (!page_cache || !(req.method == "GET" || req.method == "HEAD")) return std::nullopt;
  if (!page_cache->fetch_is_local()) {
    // A tiered store's local copies answer here; anything else goes to the pool, which looks
    // again with the shared store.
    if (!page_cache->hits_may_be_in_process()) return std::nullopt;
    return page_cache->fetch_in_process(req);
  }
  // A miss's lookup stays on the request: the handler thread's serve() continues from it.
  return page_cache->fetch_and_keep(req);
}

http::Response Server::Impl::run_user_code(const Resolution& r, http::Request& req) const {
  try {
    return router.respond(r, req);
  } catch (const std::exception& e) {
    cachekit::detail::logger()->error("request {} {} {}: handler threw: {}", req.request_id,
                                      req.method, req.path, e.what());
  } catch (...) {
    cachekit::detail::logger()->error("request {} {} {}: handler threw a non-exception",
                                      req.request_id, req.method, req.path);
  }
  return http::Response::text("Internal Server Error", 500);
}

// Runs `job` on the handler pool and resumes the coroutine on its own io thread with the
// response, or with nullopt when the pool's queue is full. The work guard keeps the io_context
// running (and a graceful stop waiting) while the job is out on the pool.
template <class Job>
auto Server::Impl::on_pool(Job job) {
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(std::optional<http::Response>)>(
      [this](auto handler, Job work_to_do) {
        using Handler = decltype(handler);
        using Guard = decltype(asio::make_work_guard(handler));
        struct Pending {
          Handler handler;
          Guard guard;
          Job job;
        };
        Guard guard = asio::make_work_guard(handler);  // before the handler is moved from
        auto pending = std::make_shared<Pending>(
            Pending{std::move(handler), std::move(guard), std::move(work_to_do)});
        auto complete = [](std::shared_ptr<Pending> p, std::optional<http::Response> response) {
          auto executor = p->guard.get_executor();
          asio::post(executor, [p = std::move(p), response = std::move(response)]() mutable {
            std::move(p->handler)(std::move(response));
          });
        };
        if (!pool->try_submit([pending, complete] { complete(pending, pending->job()); })) {
          complete(pending, std::nullopt);
        }
      },
      asio::use_awaitable, std::move(job));
}

bool Server::Impl::metrics_allowed(Connection& c) const {
  ErrorCode ec;
  const auto endpoint = c.socket.remote_endpoint(ec);
  if (ec) return false;
  auto address = endpoint.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6());
  }
  return detail::client_allowed(address.to_string(), address.is_loopback(),
                                options.metrics_allowed_clients);
}

// Suspends until `reads` answers (on this io thread): what Cache::get_many_async gives.
auto read_without_blocking(const Cache& cache, AsyncReads& reads,
                           std::span<const std::string> keys) {
  using Values = std::optional<std::vector<std::optional<Bytes>>>;
  return asio::async_initiate<const asio::use_awaitable_t<>&, void(Values)>(
      [&cache, &reads, keys](auto handler) {
        auto resume = std::make_shared<decltype(handler)>(std::move(handler));
        cache.get_many_async(reads, keys,
                             [resume](Values values) { std::move (*resume)(std::move(values)); });
      },
      asio::use_awaitable);
}

asio::awaitable<std::optional<http::Response>> Server::Impl::hit_from_shared_store(
    Worker& w, const Resolution& r, const http::Request& req) {
  if (router.has_middleware() || r.kind != Resolution::Kind::kFound) co_return std::nullopt;
  const auto& page_cache = r.endpoint->page_cache;
  if (!page_cache || page_cache->fetch_is_local()) co_return std::nullopt;
  const Cache& cache = *page_cache->options().cache;
  AsyncReads* reads = w.reads_for(cache);
  if (reads == nullptr) co_return std::nullopt;
  std::vector<std::string> keys = page_cache->keys_to_prefetch(req);
  if (keys.empty()) co_return std::nullopt;
  auto values = co_await read_without_blocking(cache, *reads, keys);
  if (!values) co_return std::nullopt;
  co_return page_cache->fetch_prefetched(req, keys, *values);
}

asio::awaitable<http::Response> Server::Impl::produce(Worker& w, Connection& c, Exchange& ex,
                                                      std::size_t& route) {
  http::Request& request = ex.request;
  if (!options.metrics_path.empty() && request.path == options.metrics_path &&
      (request.method == "GET" || request.method == "HEAD") && metrics_allowed(c)) {
    route = metrics_route;
    answered_on_io.add();
    auto response = http::Response::text(metrics_text());
    response.headers.set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    co_return response;
  }
  const Resolution resolution = router.resolve(request);
  route = resolution.route == router.route_count() ? unmatched_route : resolution.route;
  if (auto answer = answer_on_io_thread(resolution, request)) {
    answered_on_io.add();
    co_return std::move(*answer);
  }
  if (auto hit = co_await hit_from_shared_store(w, resolution, request)) {
    answered_on_io.add();
    co_return std::move(*hit);
  }
  pool_attempts.add();
  std::optional<http::Response> response = co_await on_pool(
      [this, &resolution, &request] { return run_user_code(resolution, request); });
  if (response) co_return std::move(*response);
  rejected.add();
  auto overloaded = http::Response::text("Service Unavailable", 503);
  overloaded.headers.set("Retry-After", std::to_string(options.retry_after.count()));
  co_return overloaded;
}

asio::awaitable<bool> Server::Impl::write_response(Connection& c, Exchange& ex,
                                                   const http::Response& response,
                                                   bool keep_alive) {
  const detail::HeadParams params{.request_id = ex.request.request_id,
                                  .keep_alive = keep_alive,
                                  .http10 = ex.version == 10,
                                  .head_request = ex.head_request};
  if (response.stream && !ex.head_request && detail::status_has_body(response.status)) {
    co_return co_await write_streamed(c, ex, response, params);
  }
  detail::write_head(ex.head, response, params);
  // The body goes out straight from the response's Bytes (for a hit: the stored value).
  const std::array<asio::const_buffer, 2> buffers = {
      asio::buffer(ex.head),
      asio::const_buffer(response.body.data(), detail::body_bytes_to_write(response, params))};
  c.phase = Phase::kWriting;
  c.deadline = SteadyClock::now() + options.write_timeout;
  auto [ec, n] = co_await asio::async_write(c.socket, buffers, kNoThrow);
  co_return !ec;
}

// A body that continues in a BodyStream: the head and Response::body, then each piece the
// stream yields (read on the pool: it may block), as they come. Without a known length the body
// is chunked (HTTP/1.0: delimited by closing). A stream that fails, or a pool too busy to read
// it, ends the connection before the body's end: the client sees it truncated.
asio::awaitable<bool> Server::Impl::write_piece(Connection& c, std::string_view piece,
                                                bool chunked) {
  std::string frame;
  if (chunked && !piece.empty()) frame = fmt::format("{:x}\r\n", piece.size());
  const std::string_view end = chunked && !piece.empty() ? "\r\n" : "";
  const std::array<asio::const_buffer, 3> buffers = {asio::buffer(frame),
                                                     asio::buffer(piece.data(), piece.size()),
                                                     asio::buffer(end.data(), end.size())};
  c.phase = Phase::kWriting;
  c.deadline = SteadyClock::now() + options.write_timeout;
  auto [ec, n] = co_await asio::async_write(c.socket, buffers, kNoThrow);
  co_return !ec;
}

asio::awaitable<bool> Server::Impl::write_streamed(Connection& c, Exchange& ex,
                                                   const http::Response& response,
                                                   detail::HeadParams params) {
  // (No co_await inside a condition below: g++ 12 miscompiles it.)
  const std::shared_ptr<http::BodyStream> stream = response.stream;
  const bool chunked = !stream->length() && !params.http10;
  if (!stream->length() && params.http10) params.keep_alive = false;
  detail::write_head(ex.head, response, params);
  c.phase = Phase::kWriting;
  c.deadline = SteadyClock::now() + options.write_timeout;
  auto [ec, n] = co_await asio::async_write(c.socket, asio::buffer(ex.head), kNoThrow);
  if (ec) co_return false;
  // Captures a plain pointer (`stream` keeps the source alive): g++ 12 may destroy a
  // co_await operand's temporaries twice, which a shared_ptr capture would not survive.
  http::BodyStream* source = stream.get();
  const auto read_piece = [source] {
    std::optional<http::Response> carrier(std::in_place);  // status 1: a piece; 0: the end
    std::string bytes;
    try {
      carrier->status = source->next(bytes) ? 1 : 0;
    } catch (const std::exception& e) {
      cachekit::detail::logger()->warn("cachekit server: streamed body failed: {}", e.what());
      carrier.reset();
      return carrier;
    }
    carrier->body = bytes;
    return carrier;
  };
  bool written = co_await write_piece(c, response.body.view(), chunked);
  while (written) {
    c.phase = Phase::kHandling;  // waiting on the stream's source, not on the client
    c.deadline = SteadyClock::time_point::max();
    std::optional<http::Response> piece = co_await on_pool(read_piece);
    if (!piece) co_return false;  // failed, or no pool thread to read it
    if (piece->status == 0) break;
    written = co_await write_piece(c, piece->body.view(), chunked);
  }
  if (!written) co_return false;
  if (chunked) written = co_await write_piece(c, "0\r\n\r\n", false);
  co_return written&& params.keep_alive;
}

void Server::Impl::finish(Connection& c, Exchange& ex, const http::Response& response,
                          std::size_t route, SteadyClock::time_point started) {
  const auto latency = SteadyClock::now() - started;
  requests.add();
  metrics->record_request(route, response.status, latency);
  if (response.cache_status) {
    metrics->record_cache_status(http::kCacheStatusName, *response.cache_status);
  }
  for (const auto& [name, value] : response.headers) {
    if (name.size() == 12 && http::iequals(name, "Cache-Status")) {
      metrics->record_cache_status(upstream_members(response, value));
    }
  }
  if (access_log && access_log->should_log(spdlog::level::info)) {
    log_access(c, ex, response, latency);
  }
}

void Server::Impl::log_access(Connection& c, Exchange& ex, const http::Response& response,
                              SteadyClock::duration latency) {
  if (ex.remote.empty()) {
    ErrorCode ec;
    auto endpoint = c.socket.remote_endpoint(ec);
    ex.remote = ec ? "-" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }
  const http::Request& r = ex.request;
  auto cache_status = response.headers.get("Cache-Status");
  access_log->info("{} {} \"{} {}{}{} HTTP/{}.{}\" {} {} {:.3f}ms {}", r.request_id, ex.remote,
                   r.method, r.path, r.query.empty() ? "" : "?", r.query, ex.version / 10,
                   ex.version % 10, response.status, response.body.size(),
                   std::chrono::duration<double, std::milli>(latency).count(),
                   cache_status ? *cache_status : std::string_view("-"));
}

std::vector<Sample> Server::Impl::samples() const {
  const std::uint64_t rejections = rejected.value();  // before attempts: see stats()
  const std::uint64_t dispatched = pool_attempts.value() - rejections;
  return {
      {"cachekit_http_connections", "Open client connections.", "gauge",
       static_cast<double>(connections.load(std::memory_order_relaxed))},
      {"cachekit_handler_pool_queued", "Requests waiting for a handler thread.", "gauge",
       static_cast<double>(pool->queued())},
      {"cachekit_handler_pool_busy", "Handler threads running a request.", "gauge",
       static_cast<double>(pool->busy())},
      {"cachekit_http_answered_on_io_thread_total",
       "Requests answered without the handler pool (page-cache hits, router answers, metrics).",
       "counter", static_cast<double>(answered_on_io.value())},
      {"cachekit_handler_pool_dispatched_total", "Requests handed to the handler pool.", "counter",
       static_cast<double>(dispatched)},
      {"cachekit_http_connections_refused_total",
       "Connections answered 503 and closed because max_connections were open.", "counter",
       static_cast<double>(rejected_connections.value())},
      {"cachekit_handler_pool_rejected_total", "Requests answered 503 because the pool was full.",
       "counter", static_cast<double>(rejections)},
  };
}

// ---- Server ----

Server::Server(ServerOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Server::~Server() { stop(); }

Router& Server::router() noexcept { return impl_->router; }

Server& Server::use(http::Middleware middleware) {
  impl_->router.use(std::move(middleware));
  return *this;
}

Server& Server::watch_cache(std::string alias, const Cache& cache) {
  std::lock_guard lock(impl_->lifecycle_mutex);
  if (impl_->metrics) {
    impl_->metrics->watch_cache(alias, cache);
  } else {
    impl_->watched.emplace_back(std::move(alias), &cache);
  }
  return *this;
}

void Server::start() { impl_->start(); }

// The signal_set is created and armed on this thread (distinct Asio objects may be used from
// any thread) so that `ready` runs only once SIGINT/SIGTERM can no longer kill the process.
void Server::run(const std::function<void(Server&)>& ready) {
  bool must_start = false;
  {
    std::lock_guard lock(impl_->lifecycle_mutex);
    if (impl_->stopped) return;
    must_start = !impl_->started;
  }
  if (must_start) start();
  Impl* impl = impl_.get();
  impl->signals.emplace(impl->workers[0]->ioc, SIGINT, SIGTERM);
  impl->signals->async_wait([impl](const ErrorCode& ec, int) {
    if (ec) return;  // cancelled by stop()
    std::lock_guard lock(impl->state_mutex);
    impl->stop_requested = true;
    impl->state_cv.notify_all();
  });
  if (ready) ready(*this);
  {
    std::unique_lock state(impl->state_mutex);
    impl->state_cv.wait(state, [&] { return impl->stop_requested; });
  }
  stop();
}

void Server::request_stop() noexcept {
  std::lock_guard lock(impl_->state_mutex);
  impl_->stop_requested = true;
  impl_->state_cv.notify_all();
}

void Server::stop() { impl_->stop(); }

std::uint16_t Server::port() const noexcept { return impl_->port.load(); }

ServerStats Server::stats() const noexcept {
  ServerStats s;
  s.requests = impl_->requests.value();
  s.answered_on_io_thread = impl_->answered_on_io.value();
  // Rejections are read first: every rejection was an attempt first, so the difference of two
  // racy reads taken in this order never underflows.
  s.rejected_by_pool = impl_->rejected.value();
  s.dispatched_to_pool = impl_->pool_attempts.value() - s.rejected_by_pool;
  s.connections = impl_->connections.load(std::memory_order_relaxed);
  if (impl_->pool) {
    s.pool_queued = impl_->pool->queued();
    s.pool_busy = impl_->pool->busy();
  }
  return s;
}

Server& Server::add_metrics_text(std::function<std::string()> source) {
  std::lock_guard lock(impl_->lifecycle_mutex);
  impl_->metrics_sources.push_back(std::move(source));
  return *this;
}

const Metrics& Server::metrics() const {
  if (!impl_->metrics) throw std::logic_error("cachekit server: metrics() before start()");
  return *impl_->metrics;
}

std::string Server::metrics_text() const {
  (void)metrics();  // throws before start()
  return impl_->metrics_text();
}

}  // namespace cachekit::server
