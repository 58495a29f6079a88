#include "support/postgres_server.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

#include "support/server_process.h"

namespace cachekit::testing {
namespace {

namespace fs = std::filesystem;

// CACHEKIT_PG_BINDIR, else the newest /usr/lib/postgresql/<major>/bin (Debian's layout).
fs::path bin_dir() {
  if (const char* dir = std::getenv("CACHEKIT_PG_BINDIR"); dir != nullptr && *dir != '\0') {
    return dir;
  }
  fs::path best;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", error)) {
    if (fs::exists(entry.path() / "bin" / "postgres") && entry.path() > best) best = entry.path();
  }
  if (best.empty()) throw std::runtime_error("PostgreSQL server binaries not found");
  return best / "bin";
}

struct Account {
  uid_t uid;
  gid_t gid;
};

Account postgres_account() {
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("no 'postgres' user to run PostgreSQL as");
  return {pw->pw_uid, pw->pw_gid};
}

// fork + exec `argv` as the postgres user, output appended to `log`, in a new process group.
// Only async-signal-safe calls happen between fork and exec: everything is prepared before.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& log) {
  const Account account = postgres_account();
  std::vector<char*> args;
  for (const auto& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) throw std::runtime_error("cannot open " + log.string());
  const int in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(out, STDERR_FILENO);
    if (::setgid(account.gid) != 0 || ::setuid(account.uid) != 0) ::_exit(126);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out);
  ::close(in);
  if (pid < 0) throw std::runtime_error("fork: " + std::string(std::strerror(errno)));
  ::setpgid(pid, pid);  // also here, so signalling the group cannot race the child's setpgid
  return pid;
}

// The direct children of `parent`, from /proc/<pid>/stat (its 4th field, after the
// parenthesised command name, which may itself contain spaces and parentheses).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code error;
  for (const auto& entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string text = read_proc_file(entry.path() / "stat");
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    int ppid = 0;
    if (std::sscanf(text.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == parent) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

int wait_exit(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

PostgresServer::PostgresServer(fs::path dir, int port, std::chrono::milliseconds ready_timeout)
    : dir_(std::move(dir)),
      port_(port),
      url_("postgresql://postgres@127.0.0.1:" + std::to_string(port) + "/postgres"),
      ready_timeout_(ready_timeout) {}

PostgresServer::PostgresServer(PostgresServer&& other) noexcept
    : dir_(std::exchange(other.dir_, {})),
      port_(other.port_),
      url_(std::move(other.url_)),
      ready_timeout_(other.ready_timeout_),
      pid_(std::exchange(other.pid_, -1)) {}

PostgresServer::~PostgresServer() {
  if (running()) {
    resume();
    kill();
  }
  std::error_code error;
  if (!dir_.empty()) fs::remove_all(dir_, error);
}

PostgresServer PostgresServer::start(std::chrono::milliseconds ready_timeout) {
  std::string pattern = (fs::temp_directory_path() / "cachekit-pg-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  PostgresServer server(pattern, free_port(), ready_timeout);
  const Account account = postgres_account();
  const fs::path data = server.dir_ / "data";
  // The postgres user must reach the data directory, which it alone may read (initdb checks).
  ::chmod(server.dir_.c_str(), 0755);
  ::mkdir(data.c_str(), 0700);
  if (::chown(data.c_str(), account.uid, account.gid) != 0) {
    throw std::runtime_error("cannot give " + data.string() + " to the postgres user");
  }
  const std::vector<std::string> initdb{(bin_dir() / "initdb").string(),
                                        "-D",
                                        data.string(),
                                        "-U",
                                        "postgres",
                                        "--auth=trust",
                                        "-E",
                                        "UTF8",
                                        "--no-locale",
                                        "--no-sync"};
  if (wait_exit(spawn(initdb, server.dir_ / "initdb.log")) != 0) {
    throw std::runtime_error("initdb failed; see " + (server.dir_ / "initdb.log").string());
  }
  server.launch();
  return server;
}

// fsync is off (an OS crash is not what the tests simulate), but synchronous_commit stays on,
// so what a test committed survives kill() and crash recovery as in production.
void PostgresServer::launch() {
  const fs::path data = dir_ / "data";
  const std::vector<std::string> argv{(bin_dir() / "postgres").string(),
                                      "-D",
                                      data.string(),
                                      "-p",
                                      std::to_string(port_),
                                      "-c",
                                      "listen_addresses=127.0.0.1",
                                      "-k",
                                      data.string(),
                                      "-c",
                                      "fsync=off",
                                      "-c",
                                      "full_page_writes=off",
                                      "-c",
                                      "max_connections=50"};
  pid_ = spawn(argv, dir_ / "server.log");
  // Listening is not enough: a starting server refuses sessions (57P03) until it is ready.
  const std::string conninfo = "host=127.0.0.1 port=" + std::to_string(port_) +
                               " user=postgres dbname=postgres connect_timeout=2";
  const auto deadline = std::chrono::steady_clock::now() + ready_timeout_;
  while (PQping(conninfo.c_str()) != PQPING_OK) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("postgres exited at start; see " + (dir_ / "server.log").string());
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill();
      throw std::runtime_error("postgres did not become ready on port " + std::to_string(port_));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// Every backend makes itself a process-group leader (InitPostmasterChild calls setsid()), so
// one killpg() cannot reach them: the postmaster is signalled, then each of its children.
// Stopping the postmaster first means no new child appears while the list is taken.
void PostgresServer::signal_group(int signal) const {
  if (pid_ <= 0) return;
  if (signal != SIGCONT) ::kill(pid_, signal == SIGKILL ? SIGSTOP : signal);
  for (pid_t child : children_of(pid_)) ::kill(child, signal);
  ::kill(pid_, signal);
}

void PostgresServer::reap() {
  wait_exit(pid_);
  pid_ = -1;
}

void PostgresServer::shutdown() {
  if (!running()) return;
  signal_group(SIGCONT);
  ::kill(pid_, SIGINT);  // the postmaster's "fast shutdown"
  reap();
}

void PostgresServer::pause() { signal_group(SIGSTOP); }

void PostgresServer::resume() { signal_group(SIGCONT); }

void PostgresServer::kill() {
  if (!running()) return;
  signal_group(SIGKILL);
  reap();
  // The backends die with the group; give the kernel a moment to release their shared memory,
  // which a restarting postmaster checks.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

void PostgresServer::restart() {
  shutdown();
  launch();
}

}  // namespace cachekit::testing
