// The robustness corpus (tests/e2e/request_corpus.json) against a real server over real
// sockets: request smuggling variants (CL.TE, TE.CL, TE.TE obfuscations), bad Content-Lengths,
// oversized and slow heads, many fields, pipelining, forbidden bytes, odd targets, methods and
// versions. Each row gives the exact statuses expected and whether the server then closes the
// connection; a row that keeps it open must still answer a next request. The same file drives
// bench/http/corpus-vs-nginx.sh.

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cachekit/server/server.h"
#include "e2e/http_client.h"

namespace cachekit::server {
namespace {

using namespace std::chrono_literals;
using cachekit::testing::HttpClient;

struct CorpusRow {
  std::string name;
  std::string bytes;  // sent at once; for a slow row, the head sent before the client stalls
  std::vector<int> statuses;
  bool closes = false;
};

std::string assemble(const nlohmann::json& pieces) {
  std::string out;
  for (const auto& piece : pieces) {
    if (piece.is_string()) {
      out += piece.get<std::string>();
    } else {
      const auto repeated = piece.at("repeat").get<std::string>();
      for (int i = 0; i < piece.at("times").get<int>(); ++i) out += repeated;
    }
  }
  return out;
}

std::vector<CorpusRow> load_corpus() {
  std::ifstream in(CACHEKIT_REQUEST_CORPUS);
  std::vector<CorpusRow> rows;
  for (const auto& j : nlohmann::json::parse(in)) {
    CorpusRow row{
        .name = j.at("name").get<std::string>(),
        .bytes = j.contains("slow") ? j.at("slow").get<std::string>() : assemble(j.at("send")),
        .statuses = j.at("status").get<std::vector<int>>(),
        .closes = j.at("close").get<bool>()};
    rows.push_back(std::move(row));
  }
  return rows;
}

ServerOptions corpus_options() {
  ServerOptions o;
  o.port = 0;
  o.io_threads = 1;
  o.handler_threads = 2;
  o.access_log = false;
  o.header_timeout = 1s;  // the slow-head row
  return o;
}

TEST(RequestCorpus, EveryRowGetsItsExactStatusAndConnectionFate) {
  Server server(corpus_options());
  server.router().get("/", [](http::Request&) { return http::Response::text("ok"); });
  server.router().post("/", [](http::Request& r) { return http::Response::text(r.body); });
  server.start();
  const auto rows = load_corpus();
  ASSERT_GE(rows.size(), 40U);
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    HttpClient client(server.port(), 5s);
    ASSERT_TRUE(client.send_raw(row.bytes));
    for (std::size_t i = 0; i < row.statuses.size(); ++i) {
      auto response = client.read_response();
      ASSERT_TRUE(response) << "no response " << i;
      EXPECT_EQ(response->status, row.statuses[i]) << "response " << i;
    }
    if (row.closes) {
      EXPECT_TRUE(client.wait_closed(3s)) << "the connection stayed open";
    } else {
      auto next = client.get("/", {{"Host", "localhost"}});
      ASSERT_TRUE(next) << "the connection was closed";
      EXPECT_EQ(next->status, 200);
    }
  }
}

}  // namespace
}  // namespace cachekit::server
