// Why cachekit writes the commands itself and leaves only reading to hiredis:
//  - hiredis 0.14 writes with write(2), which raises SIGPIPE when the server has reset the
//    connection — a restarting Redis would kill the application. send(MSG_NOSIGNAL) does not,
//    and a library must not change the process's signal dispositions behind its back.
//  - building RESP into one reused buffer costs no allocation per argument, and a pipeline
//    (set_many, SCAN + UNLINK) is a single send().
// redisGetReply() then finds hiredis' own output buffer empty and only reads, so its
// blocking read path with the SO_RCVTIMEO that redisSetTimeout() installed bounds every wait.
#include "backends/redis/connection.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace cachekit::redis_internal {
namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  auto count = ms.count();
  return timeval{static_cast<time_t>(count / 1000), static_cast<suseconds_t>(count % 1000 * 1000)};
}

std::string_view first_word(std::string_view text) { return text.substr(0, text.find(' ')); }

bool is_timeout(int error_number) {
  return error_number == EAGAIN || error_number == EWOULDBLOCK || error_number == ETIMEDOUT ||
         error_number == EINPROGRESS;
}

// hiredis reports a failed connect only as text; ETIMEDOUT's text is the one that matters.
Status connect_error(std::string_view where, const redisContext* context,
                     std::chrono::milliseconds timeout) {
  if (context == nullptr) return unavailable_error(fmt::format("redis {}: out of memory", where));
  std::string_view text = context->errstr;
  if (text.find("timed out") != std::string_view::npos) {
    return Status(StatusCode::kDeadlineExceeded,
                  fmt::format("redis {}: connect timed out after {} ms", where, timeout.count()));
  }
  return unavailable_error(fmt::format("redis {}: cannot connect: {}", where, text));
}

}  // namespace

// ---- CommandBuffer ----

void CommandBuffer::header(char kind, std::size_t n) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  buffer_ += kind;
  buffer_.append(digits, end);
  buffer_ += "\r\n";
}

void CommandBuffer::begin(std::size_t args) {
  header('*', args);
  ++commands_;
}

void CommandBuffer::arg(std::string_view text) {
  header('$', text.size());
  buffer_.append(text);
  buffer_ += "\r\n";
}

void CommandBuffer::arg(std::int64_t number) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, number).ptr;
  arg(std::string_view(digits, static_cast<std::size_t>(end - digits)));
}

void CommandBuffer::arg(std::string_view head, std::string_view tail) {
  header('$', head.size() + tail.size());
  buffer_.append(head);
  buffer_.append(tail);
  buffer_ += "\r\n";
}

void CommandBuffer::command(std::initializer_list<std::string_view> args) {
  begin(args.size());
  for (std::string_view a : args) arg(a);
}

// Keeps the capacity for the next command, unless a huge value inflated it.
void CommandBuffer::clear() noexcept {
  constexpr std::size_t kKeepBytes = 1 << 20;
  if (buffer_.capacity() > kKeepBytes) {
    std::string().swap(buffer_);
  } else {
    buffer_.clear();
  }
  commands_ = 0;
}

// ---- Connection ----

void write_greeting(CommandBuffer& out, const Endpoint& endpoint) {
  if (!endpoint.password.empty() && endpoint.user.empty()) {
    out.command({"AUTH", endpoint.password});
  } else if (!endpoint.password.empty()) {
    out.command({"AUTH", endpoint.user, endpoint.password});
  }
  if (endpoint.db != 0) {
    out.begin(2);
    out.arg("SELECT");
    out.arg(std::int64_t{endpoint.db});
  }
  out.command({"CLIENT", "SETNAME", "cachekit"});
}

Result<std::unique_ptr<Connection>> Connection::open(const Endpoint& endpoint, Timeouts timeouts,
                                                     std::string_view where) {
  timeval connect_tv = to_timeval(timeouts.connect);
  redisContext* context =
      endpoint.is_unix()
          ? redisConnectUnixWithTimeout(endpoint.socket_path.c_str(), connect_tv)
          : redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, connect_tv);
  if (context == nullptr || context->err != 0) {
    Status error = connect_error(where, context, timeouts.connect);
    if (context != nullptr) redisFree(context);
    return error;
  }
  std::unique_ptr<Connection> connection(new Connection(context, where, timeouts.io));
  if (redisSetTimeout(context, to_timeval(timeouts.io)) != REDIS_OK) {
    return unavailable_error(fmt::format("redis {}: cannot set the socket timeout", where));
  }
  // TCP keepalive notices a vanished peer on idle pooled connections. It is optional: a
  // failure would leave hiredis' error flag set and poison every later call, so it is reset.
  if (!endpoint.is_unix() && redisEnableKeepAlive(context) != REDIS_OK) {
    context->err = 0;
    context->errstr[0] = '\0';
  }

  // AUTH (with a user for Redis 6 ACLs), SELECT and a client name, in one round trip.
  const bool auth = !endpoint.password.empty();
  write_greeting(connection->out(), endpoint);
  if (Status s = connection->send(); !s.ok()) return s;
  const char* steps[] = {auth ? "AUTH" : nullptr, endpoint.db != 0 ? "SELECT" : nullptr, "CLIENT"};
  for (const char* step : steps) {
    if (step == nullptr) continue;
    auto reply = connection->read();
    if (!reply.ok()) return reply.status();
    if ((*reply)->type == REDIS_REPLY_ERROR) {
      return invalid_argument_error(fmt::format("redis {}: {} failed: {}", where, step,
                                                std::string_view((*reply)->str, (*reply)->len)));
    }
  }
  return connection;
}

Connection::~Connection() { redisFree(context_); }

Status Connection::send() {
  std::string_view data = out_.data();
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(context_->fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      int error_number = n == 0 ? EPIPE : errno;
      out_.clear();
      return transport_error("send", error_number);
    }
  }
  pending_ += out_.commands();
  out_.clear();
  return {};
}

Result<Reply> Connection::read() {
  void* raw = nullptr;
  errno = 0;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    return transport_error("read", errno);
  }
  --pending_;
  return Reply(static_cast<redisReply*>(raw));
}

Result<std::optional<Reply>> Connection::next_message(std::chrono::milliseconds wait, int wake_fd) {
  void* raw = nullptr;
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return transport_error("read", EPROTO);
  if (raw != nullptr) return std::optional<Reply>(Reply(static_cast<redisReply*>(raw)));
  pollfd fds[2] = {{context_->fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
  int ready = ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(wait.count()));
  if (ready < 0 && errno != EINTR) return transport_error("poll", errno);
  if (ready <= 0 || (fds[0].revents == 0)) return std::optional<Reply>();
  // Readable: what has come is read without blocking, then parsed; a reply cut in two by
  // the network is completed by the next call.
  errno = 0;
  if (redisBufferRead(context_) != REDIS_OK) return transport_error("read", errno);
  if (redisGetReplyFromReader(context_, &raw) != REDIS_OK) return transport_error("read", EPROTO);
  if (raw == nullptr) return std::optional<Reply>();
  return std::optional<Reply>(Reply(static_cast<redisReply*>(raw)));
}

Result<Reply> Connection::read_ok() {
  auto reply = read();
  if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR) return server_error(where_, **reply);
  return reply;
}

// hiredis reports a socket timeout as an I/O error with errno EAGAIN (SO_RCVTIMEO); its
// errstr is the only record once errno has been overwritten, hence the text fallback.
Status Connection::transport_error(std::string_view doing, int error_number) {
  Status status = describe_transport_error(doing, error_number);
  broken_ = true;
  error_ = status.message();
  return status;
}

Status Connection::describe_transport_error(std::string_view doing, int error_number) {
  std::string_view text = context_->err != 0 ? std::string_view(context_->errstr) : "";
  bool timeout = is_timeout(error_number) || text == std::strerror(EAGAIN);
  if (timeout && context_->err != REDIS_ERR_EOF) {
    timed_out_ = true;
    return Status(StatusCode::kDeadlineExceeded, fmt::format("redis {}: {} timed out after {} ms",
                                                             where_, doing, io_timeout_.count()));
  }
  if (context_->err == REDIS_ERR_EOF) {
    return unavailable_error(fmt::format("redis {}: the server closed the connection", where_));
  }
  if (text.empty()) text = std::strerror(error_number != 0 ? error_number : EIO);
  return unavailable_error(fmt::format("redis {}: {} failed: {}", where_, doing, text));
}

bool Connection::peer_closed() const noexcept {
  char byte = 0;
  ssize_t n = ::recv(context_->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
  return true;  // 0: EOF; > 0: bytes nobody asked for, so the stream is out of step
}

// ---- server errors ----

Status server_error(std::string_view where, const redisReply& reply) {
  std::string_view text(reply.str, reply.len);
  std::string_view code = first_word(text);
  std::string message = fmt::format("redis {}: {}", where, text);
  if (code == "WRONGTYPE") return Status(StatusCode::kFailedPrecondition, std::move(message));
  if (code == "OOM") return Status(StatusCode::kResourceExhausted, std::move(message));
  if (code == "NOAUTH" || code == "WRONGPASS" || code == "NOPERM") {
    return invalid_argument_error(std::move(message));
  }
  // Transient server states: loading a dataset, a busy script, a failover in progress.
  if (code == "LOADING" || code == "BUSY" || code == "MASTERDOWN" || code == "READONLY" ||
      code == "TRYAGAIN") {
    return unavailable_error(std::move(message));
  }
  return internal_error(std::move(message));
}

}  // namespace cachekit::redis_internal
