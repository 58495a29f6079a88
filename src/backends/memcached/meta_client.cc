// The meta-protocol side channel (see meta_client.h for why it exists).
//
// Protocol reference: memcached's doc/protocol.txt, "Meta Commands" (memcached ≥ 1.6). Replies
// used here: `VA <len> <flags>` + data block, `HD <flags>`, `EN` (miss) for mg; `HD` (stored),
// `EX` (CAS mismatch), `NF` (gone) for ms. Flags come back as letter+value tokens in the order
// asked for; they are parsed by letter, not by position.
#include "backends/memcached/meta_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace cachekit::memcached_internal {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxKeyBytes = 250;

std::string base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < in.size(); i += 3) {
    std::uint32_t n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size()) n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Waits for `events` on `fd` until `deadline`: true when ready.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int ready = ::poll(&p, 1, remaining_ms(deadline));
    if (ready > 0) return true;
    if (ready == 0) return false;
    if (errno != EINTR) return false;
  }
}

// The value of the flag token starting with `letter` in a reply line ("VA 2 t100 c7").
std::optional<std::int64_t> flag_value(std::string_view line, char letter) {
  std::size_t pos = 0;
  while ((pos = line.find(' ', pos)) != std::string_view::npos) {
    ++pos;
    if (pos < line.size() && line[pos] == letter) {
      auto end = line.find(' ', pos);
      auto token = line.substr(pos + 1, end == std::string_view::npos ? end : end - pos - 1);
      std::int64_t v = 0;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), v);
      if (ec == std::errc() && p == token.data() + token.size()) return v;
      return std::nullopt;
    }
  }
  return std::nullopt;
}

Status server_error(const ServerAddress& server, std::string_view reply) {
  if (reply.starts_with("ERROR")) {
    return unimplemented_error("memcached " + server.display() +
                               " does not speak the meta protocol (memcached 1.6 or later is "
                               "needed for ttl and signed incr)");
  }
  if (reply.starts_with("CLIENT_ERROR")) {
    return invalid_argument_error("memcached " + server.display() +
                                  " refused the request: " + std::string(reply));
  }
  return unavailable_error("memcached " + server.display() + ": " + std::string(reply));
}

}  // namespace

Result<std::string> meta_key(std::string_view key) {
  bool plain = !key.empty() && key.size() <= kMaxKeyBytes;
  for (unsigned char c : key) plain &= (c > 0x20 && c != 0x7f);
  if (plain) return std::string(key);
  std::string encoded = base64(key);
  if (key.empty() || encoded.size() > kMaxKeyBytes) {
    return invalid_argument_error("the key cannot be sent to memcached (empty or too long)");
  }
  return encoded + " b";
}

// ---- Connection ----

class MetaClient::Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  static Result<std::unique_ptr<Connection>> open(const ServerAddress& server,
                                                  std::chrono::milliseconds timeout);
  // Sends the request and reads exactly one reply (with its data block, if any).
  Status send(std::string_view data, Clock::time_point deadline);
  Result<std::string> receive(Clock::time_point deadline);

 private:
  static Result<std::unique_ptr<Connection>> connect_to(const sockaddr* address, socklen_t length,
                                                        int family, Clock::time_point deadline);
  int fd_;
};

Result<std::unique_ptr<MetaClient::Connection>> MetaClient::Connection::connect_to(
    const sockaddr* address, socklen_t length, int family, Clock::time_point deadline) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return unavailable_error(std::string("socket: ") + std::strerror(errno));
  auto connection = std::make_unique<Connection>(fd);
  if (family != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  if (::connect(fd, address, length) == 0) return connection;
  if (errno != EINPROGRESS && errno != EAGAIN) {
    return unavailable_error(std::string("connect: ") + std::strerror(errno));
  }
  if (!wait_for(fd, POLLOUT, deadline)) {
    return Status(StatusCode::kDeadlineExceeded, "connect timed out");
  }
  int error = 0;
  socklen_t size = sizeof error;
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) return unavailable_error(std::string("connect: ") + std::strerror(error));
  return connection;
}

Result<std::unique_ptr<MetaClient::Connection>> MetaClient::Connection::open(
    const ServerAddress& server, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  if (server.unix_socket) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (server.host.size() >= sizeof address.sun_path) {
      return invalid_argument_error("unix socket path too long: " + server.host);
    }
    std::memcpy(address.sun_path, server.host.c_str(), server.host.size() + 1);
    return connect_to(reinterpret_cast<sockaddr*>(&address), sizeof address, AF_UNIX, deadline);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(server.port);
  if (int rc = ::getaddrinfo(server.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return unavailable_error("cannot resolve " + server.host + ": " + ::gai_strerror(rc));
  }
  Result<std::unique_ptr<Connection>> last = unavailable_error("no address for " + server.host);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    last = connect_to(a->ai_addr, a->ai_addrlen, a->ai_family, deadline);
    if (last.ok() || last.code() == StatusCode::kDeadlineExceeded) break;
  }
  ::freeaddrinfo(found);
  return last;
}

Status MetaClient::Connection::send(std::string_view data, Clock::time_point deadline) {
  while (!data.empty()) {
    ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd_, POLLOUT, deadline)) {
        return Status(StatusCode::kDeadlineExceeded, "send timed out");
      }
    } else {
      return unavailable_error(std::string("send: ") + std::strerror(errno));
    }
  }
  return {};
}

namespace {
// The size of the first complete reply in `buffer`, or npos while it is incomplete: one line,
// a VA line plus its data block, or STAT lines up to END.
std::size_t reply_size(std::string_view buffer) {
  auto eol = buffer.find("\r\n");
  if (eol == std::string_view::npos) return std::string_view::npos;
  if (buffer.starts_with("VA ")) {
    std::size_t length = 0;
    auto digits = buffer.substr(3, eol - 3);
    std::from_chars(digits.data(), digits.data() + digits.size(), length);
    return buffer.size() >= eol + 2 + length + 2 ? eol + 2 + length + 2 : std::string_view::npos;
  }
  if (buffer.starts_with("STAT ")) {
    auto end = buffer.find("\r\nEND\r\n");
    return end == std::string_view::npos ? end : end + 7;
  }
  return eol + 2;
}
}  // namespace

Result<std::string> MetaClient::Connection::receive(Clock::time_point deadline) {
  std::string reply;
  char buffer[16384];
  std::size_t size = std::string::npos;
  while ((size = reply_size(reply)) == std::string::npos) {
    ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
    if (n > 0) {
      reply.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0) {
      return unavailable_error("the server closed the connection");
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd_, POLLIN, deadline)) {
        return Status(StatusCode::kDeadlineExceeded, "no reply in time");
      }
    } else {
      return unavailable_error(std::string("recv: ") + std::strerror(errno));
    }
  }
  // One request is in flight at a time, so anything beyond the reply means the stream is lost.
  if (reply.size() != size) return internal_error("unexpected bytes after the reply");
  return reply;
}

// ---- MetaClient ----

struct MetaClient::Idle {
  std::mutex mutex;
  std::vector<std::unique_ptr<Connection>> connections;
};

MetaClient::MetaClient(std::vector<ServerAddress> servers,
                       std::chrono::milliseconds connect_timeout, std::chrono::milliseconds timeout,
                       std::size_t max_idle_per_server)
    : servers_(std::move(servers)),
      connect_timeout_(connect_timeout),
      timeout_(timeout),
      max_idle_(max_idle_per_server),
      idle_(std::make_unique<Idle[]>(servers_.size())) {}

MetaClient::~MetaClient() = default;

Result<std::unique_ptr<MetaClient::Connection>> MetaClient::checkout(std::size_t server,
                                                                     bool& reused) {
  reused = false;
  {
    std::lock_guard lock(idle_[server].mutex);
    auto& idle = idle_[server].connections;
    if (!idle.empty()) {
      auto connection = std::move(idle.back());
      idle.pop_back();
      reused = true;
      return connection;
    }
  }
  return Connection::open(servers_[server], connect_timeout_);
}

void MetaClient::checkin(std::size_t server, std::unique_ptr<Connection> connection) {
  std::lock_guard lock(idle_[server].mutex);
  if (idle_[server].connections.size() < max_idle_) {
    idle_[server].connections.push_back(std::move(connection));
  }
}

Result<std::string> MetaClient::exchange(std::size_t server, const std::string& request,
                                         std::string_view key) {
  const std::string where = "memcached " + servers_[server].display();
  Result<std::string> reply = unavailable_error("not sent");
  // An idle connection may have been closed by a restarted server; that shows as a reset or
  // EOF on first use, and one retry on a fresh connection is then safe: mg only reads, an ms
  // that did land makes its CAS stale, so the caller's loop reads again, and an ma sent on a
  // connection the server had already closed never reached it.
  for (int attempt = 0; attempt < 2; ++attempt) {
    bool reused = false;
    auto connection = checkout(server, reused);
    if (!connection.ok()) {
      return Status(connection.code(), where + ": " + connection.status().message());
    }
    auto deadline = Clock::now() + timeout_;
    Status sent = (*connection)->send(request, deadline);
    reply = sent.ok() ? (*connection)->receive(deadline) : Result<std::string>(sent);
    if (reply.ok()) {
      bool clean = !reply->starts_with("CLIENT_ERROR") && !reply->starts_with("SERVER_ERROR") &&
                   !reply->starts_with("ERROR");
      if (clean) checkin(server, std::move(*connection));
      return reply;
    }
    if (!reused || reply.code() != StatusCode::kUnavailable) break;
  }
  return Status(reply.code(), where + " ('" + std::string(key) + "'): " + reply.status().message());
}

Result<std::optional<MetaClient::Item>> MetaClient::get(std::size_t server, std::string_view key,
                                                        bool with_value) {
  auto token = meta_key(key);
  if (!token.ok()) return token.status();
  std::string request = "mg " + *token + (with_value ? " t v c\r\n" : " t\r\n");
  auto reply = exchange(server, request, key);
  if (!reply.ok()) return reply.status();
  std::string_view text = *reply;
  if (text.starts_with("EN\r\n")) return std::optional<Item>();
  if (!text.starts_with("VA ") && !text.starts_with("HD"))
    return server_error(servers_[server], text);
  auto eol = text.find("\r\n");
  std::string_view line = text.substr(0, eol);
  Item item;
  item.ttl = flag_value(line, 't').value_or(-1);
  if (with_value) {
    item.cas = static_cast<std::uint64_t>(flag_value(line, 'c').value_or(0));
    if (text.starts_with("VA "))
      item.value = std::string(text.substr(eol + 2, text.size() - eol - 4));
  }
  return std::optional<Item>(std::move(item));
}

Result<MetaClient::StoreOutcome> MetaClient::store_if_unchanged(std::size_t server,
                                                                std::string_view key,
                                                                std::string_view value,
                                                                std::uint64_t cas,
                                                                std::int64_t exptime) {
  auto token = meta_key(key);
  if (!token.ok()) return token.status();
  std::string request = "ms " + *token + " " + std::to_string(value.size()) + " C" +
                        std::to_string(cas) + " T" + std::to_string(exptime) + "\r\n";
  request.append(value);
  request.append("\r\n");
  auto reply = exchange(server, request, key);
  if (!reply.ok()) return reply.status();
  if (reply->starts_with("HD")) return StoreOutcome::kStored;
  if (reply->starts_with("EX") || reply->starts_with("NS")) return StoreOutcome::kChanged;
  if (reply->starts_with("NF")) return StoreOutcome::kMissing;
  return server_error(servers_[server], *reply);
}

Result<std::optional<std::uint64_t>> MetaClient::add(std::size_t server, std::string_view key,
                                                     std::uint64_t amount) {
  auto token = meta_key(key);
  if (!token.ok()) return token.status();
  auto reply = exchange(server, "ma " + *token + " v D" + std::to_string(amount) + "\r\n", key);
  if (!reply.ok()) return reply.status();
  std::string_view text = *reply;
  if (text.starts_with("NF")) return std::optional<std::uint64_t>();
  if (text.starts_with("CLIENT_ERROR cannot increment")) {
    return Status(StatusCode::kFailedPrecondition, "not an unsigned integer");
  }
  if (!text.starts_with("VA ")) return server_error(servers_[server], text);
  auto eol = text.find("\r\n");
  std::string_view number = text.substr(eol + 2, text.size() - eol - 4);
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (ec != std::errc() || end != number.data() + number.size()) {
    return server_error(servers_[server], text);
  }
  return std::optional<std::uint64_t>(value);
}

Result<std::vector<std::pair<std::string, std::string>>> MetaClient::stats(std::size_t server) {
  auto reply = exchange(server, "stats\r\n", "stats");
  if (!reply.ok()) return reply.status();
  if (!reply->starts_with("STAT ") && !reply->starts_with("END")) {
    return server_error(servers_[server], *reply);
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::string_view rest = *reply;
  while (rest.starts_with("STAT ")) {
    auto eol = rest.find("\r\n");
    auto line = rest.substr(5, eol - 5);
    auto space = line.find(' ');
    if (space != std::string_view::npos) {
      out.emplace_back(std::string(line.substr(0, space)), std::string(line.substr(space + 1)));
    }
    rest.remove_prefix(eol + 2);
  }
  return out;
}

}  // namespace cachekit::memcached_internal
