#pragma once
// One libpq connection of the PostgreSQL engine, driven in non-blocking mode so that every
// wait — connecting, sending, reading — ends at the call's deadline.
//
// Why not libpq's blocking calls with connect_timeout: connect_timeout counts whole seconds
// (and at least 2), and a blocking PQexec waits forever on a server that stopped answering
// (SIGSTOP, a network partition). Here each wait is a poll() bounded by the deadline; a
// connection that timed out mid-statement is in an unknown protocol state, so it is marked
// broken and the pool closes it.
#include <libpq-fe.h>

#include <array>
#include <memory>
#include <string>

#include "backends/sql/engine.h"
#include "backends/sql/statements.h"

namespace cachekit::sql_internal {

class PostgresConnection final : public Connection {
 public:
  // Starts connecting with libpq keywords (`url` is expanded as dbname), and finishes by the
  // deadline; then sets the server-side statement_timeout.
  static Result<std::unique_ptr<Connection>> open(const std::string& url,
                                                  const std::string& location,
                                                  const std::string& table,
                                                  std::chrono::milliseconds statement_timeout,
                                                  Deadline deadline);
  ~PostgresConnection() override;
  PostgresConnection(const PostgresConnection&) = delete;
  PostgresConnection& operator=(const PostgresConnection&) = delete;

  Status execute(const Statement& statement, std::span<const Param> params, RowFn on_row,
                 std::int64_t* affected, Deadline deadline) override;
  Status execute_script(std::string_view sql, Deadline deadline) override;
  [[nodiscard]] bool broken() const override { return broken_; }
  [[nodiscard]] bool still_usable() override;

 private:
  PostgresConnection(PGconn* conn, const std::string& location, const std::string& table)
      : conn_(conn), location_(location), table_(table) {}

  Status prepare(const Statement& statement, std::span<const Param> params, Deadline deadline);
  Status send(const Statement& statement, std::span<const Param> params);
  Status flush(Deadline deadline);
  Status collect(RowFn on_row, std::int64_t* affected, Deadline deadline);
  Status wait(short events, Deadline deadline);
  Status result_status(PGresult* result, RowFn on_row, std::int64_t* affected);
  Status lost(std::string_view what);

  PGconn* conn_;
  const std::string& location_;
  const std::string& table_;
  bool broken_ = false;
  std::array<bool, kStatementCount> prepared_{};
};

}  // namespace cachekit::sql_internal
