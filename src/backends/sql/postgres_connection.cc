#include "backends/sql/postgres_connection.h"

#include <endian.h>
#include <fmt/format.h>
#include <poll.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cachekit::sql_internal {
namespace {

// Type OIDs from PostgreSQL's pg_type.dat: statements declare their parameters' types so the
// server never has to guess them (a NULL expiry has no type of its own).
constexpr Oid kTextOid = 25;
constexpr Oid kByteaOid = 17;
constexpr Oid kInt8Oid = 20;
// A statement's parameters that live on the stack; batches use the heap.
constexpr std::size_t kInlineParams = 8;

Oid type_oid(const Param& p) {
  switch (p.type) {
    case Param::Type::kText:
      return kTextOid;
    case Param::Type::kBytes:
      return kByteaOid;
    case Param::Type::kInt64:
      return kInt8Oid;
  }
  return kTextOid;
}

std::string trimmed(const char* message) {
  std::string text = message == nullptr ? "" : message;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string statement_name(int id) { return "cachekit_" + std::to_string(id); }

// A few values inline, more on the heap: a single-key statement binds without allocating.
template <class T>
class Slots {
 public:
  explicit Slots(std::size_t n) {
    if (n > kInlineParams) heap_.resize(n);
    data_ = n > kInlineParams ? heap_.data() : inline_.data();
  }
  Slots(const Slots&) = delete;
  Slots& operator=(const Slots&) = delete;
  T& operator[](std::size_t i) { return data_[i]; }
  [[nodiscard]] const T* data() const { return data_; }

 private:
  std::array<T, kInlineParams> inline_{};
  std::vector<T> heap_;
  T* data_;
};

// Parameters in libpq's binary format: text and bytea as their raw bytes (no escaping, no hex),
// int8 as 8 big-endian bytes.
class BoundParams {
 public:
  explicit BoundParams(std::span<const Param> params)
      : n_(params.size()), types_(n_), values_(n_), lengths_(n_), formats_(n_), numbers_(n_) {
    for (std::size_t i = 0; i < n_; ++i) {
      const Param& p = params[i];
      types_[i] = type_oid(p);
      formats_[i] = 1;
      if (p.null) {
        values_[i] = nullptr;
      } else if (p.type == Param::Type::kInt64) {
        numbers_[i] = htobe64(static_cast<std::uint64_t>(p.number));
        values_[i] = reinterpret_cast<const char*>(&numbers_[i]);
        lengths_[i] = 8;
      } else {
        values_[i] = p.bytes.empty() ? "" : p.bytes.data();  // null would mean SQL NULL
        lengths_[i] = static_cast<int>(p.bytes.size());
      }
    }
  }
  [[nodiscard]] int size() const { return static_cast<int>(n_); }
  [[nodiscard]] const Oid* types() const { return types_.data(); }
  [[nodiscard]] const char* const* values() const { return values_.data(); }
  [[nodiscard]] const int* lengths() const { return lengths_.data(); }
  [[nodiscard]] const int* formats() const { return formats_.data(); }

 private:
  std::size_t n_;
  Slots<Oid> types_;
  Slots<const char*> values_;
  Slots<int> lengths_;
  Slots<int> formats_;
  Slots<std::uint64_t> numbers_;
};

class PostgresRow final : public Row {
 public:
  PostgresRow(const PGresult* result, int row) : result_(result), row_(row) {}
  [[nodiscard]] bool is_null(int column) const override {
    return PQgetisnull(result_, row_, column) != 0;
  }
  [[nodiscard]] std::string_view bytes(int column) const override {
    return {PQgetvalue(result_, row_, column),
            static_cast<std::size_t>(PQgetlength(result_, row_, column))};
  }
  // Binary integers arrive big-endian in the column's own width.
  [[nodiscard]] std::int64_t integer(int column) const override {
    const char* data = PQgetvalue(result_, row_, column);
    switch (PQgetlength(result_, row_, column)) {
      case 8: {
        std::uint64_t v = 0;
        std::memcpy(&v, data, 8);
        return static_cast<std::int64_t>(be64toh(v));
      }
      case 4: {
        std::uint32_t v = 0;
        std::memcpy(&v, data, 4);
        return static_cast<std::int32_t>(be32toh(v));
      }
      case 2: {
        std::uint16_t v = 0;
        std::memcpy(&v, data, 2);
        return static_cast<std::int16_t>(be16toh(v));
      }
      default:
        return 0;
    }
  }

 private:
  const PGresult* result_;
  int row_;
};

// What a failed statement's SQLSTATE means to the caller (PostgreSQL's errcodes.txt).
Status sqlstate_status(std::string_view state, const std::string& message, const std::string& table,
                       bool& connection_lost) {
  auto starts = [&](std::string_view prefix) { return state.starts_with(prefix); };
  if (state == "42P01") return missing_table_error(table);
  if (state == "57014") {  // query_canceled: our statement_timeout fired
    return Status(StatusCode::kDeadlineExceeded, "postgres: " + message);
  }
  if (starts("08") || starts("57P")) {  // connection exception, shutdown, cannot connect now
    connection_lost = true;
    return unavailable_error("postgres: " + message);
  }
  if (starts("53") || starts("40") || starts("55P03")) {  // resources, rollback, lock timeout
    return unavailable_error("postgres: " + message);
  }
  if (state == "22021" || state == "22P05" || state == "54000") {  // bad text, too long a key
    return invalid_argument_error("postgres: " + message);
  }
  return internal_error(fmt::format("postgres: {} (SQLSTATE {})", message, state));
}

}  // namespace

Result<std::unique_ptr<Connection>> PostgresConnection::open(
    const std::string& url, const std::string& location, const std::string& table,
    std::chrono::milliseconds statement_timeout, Deadline deadline) {
  const char* keywords[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {url.c_str(), "cachekit", nullptr};
  PGconn* raw = PQconnectStartParams(keywords, values, /*expand_dbname=*/1);
  if (raw == nullptr) return unavailable_error("postgres: out of memory");
  std::unique_ptr<PostgresConnection> connection(new PostgresConnection(raw, location, table));
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  while (PQstatus(raw) != CONNECTION_BAD && state != PGRES_POLLING_OK &&
         state != PGRES_POLLING_FAILED) {
    Status ready = connection->wait(state == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
    if (!ready.ok()) {
      return Status(ready.code(),
                    fmt::format("postgres: connecting to {}: {}", location, ready.message()));
    }
    state = PQconnectPoll(raw);
  }
  if (state != PGRES_POLLING_OK) {
    return unavailable_error(
        fmt::format("postgres: cannot connect to {}: {}", location, trimmed(PQerrorMessage(raw))));
  }
  PQsetnonblocking(raw, 1);
  PQsetNoticeProcessor(
      raw, [](void*, const char*) {}, nullptr);  // NOTICEs are not errors
  const std::string setup =
      fmt::format("SET statement_timeout = {}", std::max<long long>(1, statement_timeout.count()));
  if (Status s = connection->execute_script(setup, deadline); !s.ok()) return s;
  return std::unique_ptr<Connection>(std::move(connection));
}

PostgresConnection::~PostgresConnection() { PQfinish(conn_); }

Status PostgresConnection::lost(std::string_view what) {
  broken_ = true;
  return unavailable_error(
      fmt::format("postgres: {} {}: {}", what, location_, trimmed(PQerrorMessage(conn_))));
}

Status PostgresConnection::wait(short events, Deadline deadline) {
  const int fd = PQsocket(conn_);
  if (fd < 0) return unavailable_error("no socket");
  while (true) {
    const auto left = deadline - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) {
      return Status(StatusCode::kDeadlineExceeded, "no answer within the timeout");
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(ms));
    if (n > 0) return {};
    if (n < 0 && errno != EINTR) return unavailable_error(std::strerror(errno));
  }
}

// An idle connection has nothing to read; if the socket is readable, the server has closed it
// or sent a FATAL message (a shutdown or restart), and it is not worth a failed call to learn.
bool PostgresConnection::still_usable() {
  if (broken_ || PQstatus(conn_) != CONNECTION_OK) return false;
  pollfd p{PQsocket(conn_), POLLIN, 0};
  return ::poll(&p, 1, 0) == 0;
}

Status PostgresConnection::execute(const Statement& statement, std::span<const Param> params,
                                   RowFn on_row, std::int64_t* affected, Deadline deadline) {
  if (statement.id >= 0 && !prepared_[statement.id]) {
    if (Status s = prepare(statement, params, deadline); !s.ok()) return s;
  }
  if (Status s = send(statement, params); !s.ok()) return s;
  if (Status s = flush(deadline); !s.ok()) return s;
  return collect(on_row, affected, deadline);
}

// PQprepare once per connection and statement: afterwards each call sends only Bind/Execute,
// and the server reuses the parsed statement (and, once it decides to, a generic plan).
Status PostgresConnection::prepare(const Statement& statement, std::span<const Param> params,
                                   Deadline deadline) {
  const BoundParams bound(params);
  if (PQsendPrepare(conn_, statement_name(statement.id).c_str(), statement.sql.c_str(),
                    bound.size(), bound.types()) == 0) {
    return lost("sending to");
  }
  if (Status s = flush(deadline); !s.ok()) return s;
  if (Status s = collect({}, nullptr, deadline); !s.ok()) return s;
  prepared_[statement.id] = true;
  return {};
}

Status PostgresConnection::send(const Statement& statement, std::span<const Param> params) {
  const BoundParams bound(params);
  const int sent =
      statement.id >= 0
          ? PQsendQueryPrepared(conn_, statement_name(statement.id).c_str(), bound.size(),
                                bound.values(), bound.lengths(), bound.formats(), 1)
          : PQsendQueryParams(conn_, statement.sql.c_str(), bound.size(), bound.types(),
                              bound.values(), bound.lengths(), bound.formats(), 1);
  return sent != 0 ? Status() : lost("sending to");
}

Status PostgresConnection::flush(Deadline deadline) {
  while (true) {
    const int pending = PQflush(conn_);
    if (pending == 0) return {};
    if (pending < 0) return lost("sending to");
    if (Status s = wait(POLLOUT | POLLIN, deadline); !s.ok()) {
      broken_ = true;
      return Status(s.code(), fmt::format("postgres: {}: {}", location_, s.message()));
    }
    if (PQconsumeInput(conn_) == 0) return lost("reading from");
  }
}

// Reads every result of the command (libpq ends the sequence with a null result) and reports
// the first one's status; the connection is then ready for the next command.
Status PostgresConnection::collect(RowFn on_row, std::int64_t* affected, Deadline deadline) {
  Status first;
  bool seen = false;
  while (true) {
    while (PQisBusy(conn_) != 0) {
      if (Status s = wait(POLLIN, deadline); !s.ok()) {
        broken_ = true;
        return Status(s.code(), fmt::format("postgres: {}: {}", location_, s.message()));
      }
      if (PQconsumeInput(conn_) == 0) return lost("reading from");
    }
    std::unique_ptr<PGresult, void (*)(PGresult*)> result(PQgetResult(conn_), &PQclear);
    if (!result) break;
    if (!seen) first = result_status(result.get(), on_row, affected);
    seen = true;
  }
  if (PQstatus(conn_) == CONNECTION_BAD) broken_ = true;
  return first;
}

Status PostgresConnection::result_status(PGresult* result, RowFn on_row, std::int64_t* affected) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
    for (int row = 0, rows = PQntuples(result); row < rows; ++row) {
      on_row(PostgresRow(result, row));
    }
    if (affected != nullptr) *affected = std::atoll(PQcmdTuples(result));
    return {};
  }
  const std::string message = trimmed(PQresultErrorMessage(result));
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  if (PQstatus(conn_) == CONNECTION_BAD || state == nullptr) {
    broken_ = true;
    return unavailable_error(fmt::format("postgres: {}: {}", location_, message));
  }
  bool connection_lost = false;
  Status mapped = sqlstate_status(state, message, table_, connection_lost);
  if (connection_lost) broken_ = true;
  return mapped;
}

Status PostgresConnection::execute_script(std::string_view sql, Deadline deadline) {
  // The simple-query protocol runs several statements in one implicit transaction.
  if (PQsendQuery(conn_, std::string(sql).c_str()) == 0) return lost("sending to");
  if (Status s = flush(deadline); !s.ok()) return s;
  return collect({}, nullptr, deadline);
}

}  // namespace cachekit::sql_internal
