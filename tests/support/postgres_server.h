#pragma once
// PostgresServer: a private PostgreSQL cluster that one test creates, stops, freezes and
// restarts at will — so fault tests never disturb the shared test server.
//
//   auto pg = PostgresServer::start();   // initdb (~1.5 s) + postgres on a free port
//   pg.url();                            // "postgresql://postgres@127.0.0.1:P/postgres"
//   pg.shutdown();   // fast shutdown (SIGINT): sessions get FATAL 57P01, the port refuses
//   pg.pause();      // SIGSTOP to the postmaster and every backend: nothing answers
//   pg.resume();     // SIGCONT
//   pg.kill();       // SIGKILL to all of them: connections reset, as in a crash
//   pg.restart();    // the same cluster on the same port, waited for
//
// Why not ServerProcess (server_process.h): PostgreSQL refuses to run as root, needs initdb
// first, answers TCP before it accepts queries, and forks a process per session — so
// freezing or killing only the postmaster would leave established sessions answering. The
// server therefore runs as the `postgres` user, the postmaster and each of its children are
// signalled, and it is ready when PQping says so. fsync is off: the cluster is thrown away.
// Not thread-safe: one test thread drives it. Throws std::runtime_error when it cannot start.

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <string>

namespace cachekit::testing {

class PostgresServer {
 public:
  static PostgresServer start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(30));

  PostgresServer(PostgresServer&& other) noexcept;
  PostgresServer& operator=(PostgresServer&&) = delete;
  ~PostgresServer();  // kills the server and removes the cluster

  [[nodiscard]] int port() const noexcept { return port_; }
  [[nodiscard]] const std::string& url() const noexcept { return url_; }
  [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

  void shutdown();  // fast shutdown, waited for
  void pause();
  void resume();
  void kill();
  void restart();  // shutdown()/kill() first if running

 private:
  PostgresServer(std::filesystem::path dir, int port, std::chrono::milliseconds ready_timeout);
  void launch();
  void signal_group(int signal) const;
  void reap();

  std::filesystem::path dir_;
  int port_;
  std::string url_;
  std::chrono::milliseconds ready_timeout_;
  pid_t pid_ = -1;
};

}  // namespace cachekit::testing
