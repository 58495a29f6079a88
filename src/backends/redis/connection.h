#pragma once
// One connection to a Redis server: RESP commands written by cachekit, replies parsed by
// hiredis. Internal to the Redis backend; a Connection is used by one thread at a time.

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

#include "backends/redis/url.h"
#include "cachekit/status.h"

namespace cachekit::redis_internal {

struct ReplyFree {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
// A parsed reply; an error reply (REDIS_REPLY_ERROR) is a Reply, not a Status, so that each
// command of a pipeline can fail on its own.
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// RESP commands ("*<n>\r\n" then "$<len>\r\n<bytes>\r\n" per argument), built into one
// reusable buffer: no per-argument allocation, and binary-safe.
class CommandBuffer {
 public:
  // Starts a command of `args` arguments (the command name included).
  void begin(std::size_t args);
  void arg(std::string_view text);
  void arg(std::int64_t number);
  // One argument made of two parts: a key namespace and a key, without joining them first.
  void arg(std::string_view head, std::string_view tail);
  // A whole command of plain arguments.
  void command(std::initializer_list<std::string_view> args);
  [[nodiscard]] std::size_t commands() const noexcept { return commands_; }
  [[nodiscard]] std::string_view data() const noexcept { return buffer_; }
  void clear() noexcept;

 private:
  void header(char kind, std::size_t n);
  std::string buffer_;
  std::size_t commands_ = 0;
};

// What a new connection sends first: AUTH (with the ACL user when there is one) when the
// endpoint has a password, SELECT when its database is not 0, then CLIENT SETNAME cachekit.
void write_greeting(CommandBuffer& out, const Endpoint& endpoint);

struct Timeouts {
  std::chrono::milliseconds connect{200};
  std::chrono::milliseconds io{200};
};

class Connection {
 public:
  // Connects, then authenticates and selects the database in one round trip. `where` names
  // the server in messages and must outlive the connection.
  static Result<std::unique_ptr<Connection>> open(const Endpoint& endpoint, Timeouts timeouts,
                                                  std::string_view where);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Where the next commands are built; send() writes them all at once.
  CommandBuffer& out() noexcept { return out_; }
  Status send();
  // The next reply. A transport failure (timeout, reset, EOF) breaks the connection.
  Result<Reply> read();
  // A reply that must not be an error reply; the server's error becomes a Status.
  Result<Reply> read_ok();

  // For a connection in subscriber mode, whose replies come unasked (messages and pongs):
  // the next one, waiting up to `wait` for it, or nullopt when none came or `wake_fd` became
  // readable first (-1: no wake-up descriptor). A transport failure breaks the connection.
  Result<std::optional<Reply>> next_message(std::chrono::milliseconds wait, int wake_fd);

  // Broken connections must be closed, not reused.
  [[nodiscard]] bool broken() const noexcept { return broken_; }
  [[nodiscard]] bool timed_out() const noexcept { return timed_out_; }
  // What broke it ("" while it is not broken).
  [[nodiscard]] const std::string& error() const noexcept { return error_; }
  // Replies sent for but not read yet: a connection returned with some is out of step.
  [[nodiscard]] std::size_t pending() const noexcept { return pending_; }
  // True when the server has closed its end (seen without blocking).
  [[nodiscard]] bool peer_closed() const noexcept;
  [[nodiscard]] std::string_view where() const noexcept { return where_; }

 private:
  Connection(redisContext* context, std::string_view where, std::chrono::milliseconds io_timeout)
      : context_(context), where_(where), io_timeout_(io_timeout) {}
  Status transport_error(std::string_view doing, int error_number);
  Status describe_transport_error(std::string_view doing, int error_number);

  redisContext* context_;
  std::string_view where_;
  std::chrono::milliseconds io_timeout_;
  CommandBuffer out_;
  std::size_t pending_ = 0;
  bool broken_ = false;
  bool timed_out_ = false;
  std::string error_;
};

// The Status for an error reply ("WRONGTYPE ...", "OOM ...", "LOADING ...", ...).
Status server_error(std::string_view where, const redisReply& reply);

}  // namespace cachekit::redis_internal
