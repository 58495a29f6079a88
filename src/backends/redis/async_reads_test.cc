// The Redis backend's non-blocking reads (Backend::async_reads, through Cache::get_many_async),
// driven by an io_context on the test's thread, against private redis-servers the tests
// freeze, kill and restart.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cachekit/backends/redis.h"
#include "cachekit/cache.h"
#include "support/redis_test_support.h"

namespace cachekit {
namespace {

using namespace std::chrono_literals;
using testing::RawRedis;
using Values = std::optional<std::vector<std::optional<Bytes>>>;

std::shared_ptr<Backend> backend_at(const std::string& url,
                                    std::chrono::milliseconds io_timeout = 200ms) {
  auto backend = make_redis_backend(RedisOptions{.locations = {url}, .io_timeout = io_timeout});
  if (!backend.ok()) throw std::runtime_error(backend.status().message());
  return *backend;
}

// One get_many_async, run to its answer on `loop` (on this thread).
Values read(boost::asio::io_context& loop, const Cache& cache, AsyncReads& reads,
            std::vector<std::string> keys) {
  std::optional<Values> answer;
  cache.get_many_async(reads, keys, [&](Values values) { answer = std::move(values); });
  EXPECT_FALSE(answer.has_value()) << "answered inside the call";
  loop.restart();
  while (!answer && loop.run_one() > 0) {
  }
  EXPECT_TRUE(answer.has_value()) << "the loop ran out of work unanswered";
  return answer ? std::move(*answer) : Values();
}

// read() until the reads answer again after a failure (they retry their connection a second
// later), for at most 10 s.
Values read_once_back(boost::asio::io_context& loop, const Cache& cache, AsyncReads& reads,
                      const std::vector<std::string>& keys) {
  Values back;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (!back && std::chrono::steady_clock::now() < give_up) {
    back = read(loop, cache, reads, keys);
    if (!back) std::this_thread::sleep_for(50ms);
  }
  return back;
}

std::string text(const std::optional<Bytes>& value) {
  return value ? std::string(value->view()) : "<missing>";
}

TEST(RedisAsyncReads, ValuesAndMissesComeBackInOrderOnTheLoop) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis, 2)), CacheOptions{.key_prefix = "p"});
  ASSERT_TRUE(cache.set("a", "alpha"));
  ASSERT_TRUE(cache.set("b", std::string(100000, 'b')));  // more than one read of the socket
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  ASSERT_NE(reads, nullptr);
  Values values = read(loop, cache, *reads, {"a", "nothing", "b"});
  ASSERT_TRUE(values.has_value());
  ASSERT_EQ(values->size(), 3U);
  EXPECT_EQ(text((*values)[0]), "alpha");
  EXPECT_EQ(text((*values)[1]), "<missing>");
  EXPECT_EQ(text((*values)[2]), std::string(100000, 'b'));
  // The Cache's key prefix and version were applied: the final key is what was read.
  EXPECT_EQ(RawRedis("127.0.0.1", redis.port(), 2).command({"GET", cache.make_key("a")}).str,
            "alpha");
  EXPECT_NE(cache.make_key("a"), "a");
}

TEST(RedisAsyncReads, ConcurrentCallsEachGetTheirOwnAnswers) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis)));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(cache.set("k" + std::to_string(i), std::to_string(i)));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  std::vector<Values> answers(50);
  int answered = 0;
  for (int i = 0; i < 50; ++i) {
    std::vector<std::string> keys = {"k" + std::to_string(i), "k" + std::to_string(49 - i)};
    cache.get_many_async(*reads, keys, [&answers, &answered, i](Values values) {
      answers[i] = std::move(values);
      ++answered;
    });
  }
  loop.restart();
  while (answered < 50 && loop.run_one() > 0) {
  }
  ASSERT_EQ(answered, 50);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(answers[i].has_value()) << i;
    EXPECT_EQ(text((*answers[i])[0]), std::to_string(i));
    EXPECT_EQ(text((*answers[i])[1]), std::to_string(49 - i));
  }
}

TEST(RedisAsyncReads, AnErrorReplyFailsOnlyItsCall) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis)));
  ASSERT_TRUE(cache.set("fine", "ok"));
  RawRedis raw("127.0.0.1", redis.port());
  raw.command({"RPUSH", cache.make_key("list"), "x"});  // GET on it: WRONGTYPE
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  EXPECT_FALSE(read(loop, cache, *reads, {"fine", "list"}).has_value());
  Values after = read(loop, cache, *reads, {"fine"});
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(text((*after)[0]), "ok");
}

TEST(RedisAsyncReads, PasswordAndDatabaseAreSentFirst) {
  auto redis = testing::start_private_redis({"--requirepass", "s3cret"});
  const std::string url = "redis://:s3cret@127.0.0.1:" + std::to_string(redis.port()) + "/3";
  Cache cache(backend_at(url));
  ASSERT_TRUE(cache.set("k", "in db 3"));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  Values values = read(loop, cache, *reads, {"k"});
  ASSERT_TRUE(values.has_value());
  EXPECT_EQ(text((*values)[0]), "in db 3");
}

TEST(RedisAsyncReads, AWrongPasswordIsNulloptNotAnEmptyDatabase) {
  auto redis = testing::start_private_redis({"--requirepass", "s3cret"});
  const std::string url = "redis://:wrong@127.0.0.1:" + std::to_string(redis.port()) + "/0";
  Cache cache(backend_at(url));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  EXPECT_FALSE(read(loop, cache, *reads, {"k"}).has_value());
}

// A frozen server: the call is answered nullopt once the I/O timeout passes; after the server
// thaws, the reads connect again (a second after the failure) and answer.
TEST(RedisAsyncReads, AFrozenServerTimesOutThenTheReadsComeBack) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis), 300ms));
  ASSERT_TRUE(cache.set("k", "v"));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  ASSERT_TRUE(read(loop, cache, *reads, {"k"}).has_value());
  redis.stop();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_FALSE(read(loop, cache, *reads, {"k"}).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
  redis.resume();
  // Within the retry interval calls are answered nullopt at once; then the reads work again.
  Values back = read_once_back(loop, cache, *reads, {"k"});
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(text((*back)[0]), "v");
}

// Killed, then back empty on the same port: the reads reconnect and see the empty server.
TEST(RedisAsyncReads, AServerBackEmptyAnswersMisses) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis)));
  ASSERT_TRUE(cache.set("k", "v"));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  ASSERT_TRUE(read(loop, cache, *reads, {"k"}).has_value());
  redis.kill();
  EXPECT_FALSE(read(loop, cache, *reads, {"k"}).has_value());
  redis.restart();
  Values back = read_once_back(loop, cache, *reads, {"k"});
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(text((*back)[0]), "<missing>");
}

// close() answers what is pending (on the loop) and leaves nothing that keeps the loop running.
TEST(RedisAsyncReads, CloseAnswersPendingCallsAndReleasesTheLoop) {
  auto redis = testing::start_private_redis();
  Cache cache(backend_at(testing::url_of(redis), 10s));
  boost::asio::io_context loop;
  auto reads = cache.async_reads(loop);
  ASSERT_TRUE(read(loop, cache, *reads, {"k"}).has_value());
  redis.stop();
  std::optional<Values> answer;
  cache.get_many_async(*reads, std::vector<std::string>{"k"},
                       [&](Values values) { answer = std::move(values); });
  loop.restart();
  loop.poll();  // the GET is written; its answer would take 10 s
  EXPECT_FALSE(answer.has_value());
  reads->close();
  EXPECT_FALSE(answer.has_value()) << "answered inside close()";
  loop.run();  // returns: nothing is left to wait for
  ASSERT_TRUE(answer.has_value());
  EXPECT_FALSE(answer->has_value());
  // Later calls are answered nullopt.
  EXPECT_FALSE(read(loop, cache, *reads, {"k"}).has_value());
  redis.resume();
}

}  // namespace
}  // namespace cachekit
