// Slot hashing against the reference vectors and against a real cluster node's own
// CLUSTER KEYSLOT (the shared test cluster of scripts/test-servers).
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "backends/redis/slots.h"
#include "support/redis_test_support.h"

namespace cachekit::redis_internal {
namespace {

using testing::RawRedis;

// The first node of CACHEKIT_TEST_REDIS_CLUSTER ("127.0.0.1:port,...").
RawRedis first_cluster_node() {
  std::string nodes = testing::shared_redis_url("CACHEKIT_TEST_REDIS_CLUSTER");
  std::string first = nodes.substr(0, nodes.find(','));
  auto colon = first.rfind(':');
  return RawRedis(first.substr(0, colon), std::stoi(first.substr(colon + 1)));
}

TEST(ClusterSlots, Crc16MatchesTheXmodemCheckValue) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);
  EXPECT_EQ(crc16(""), 0);
}

TEST(ClusterSlots, KnownKeysHashToTheirReferenceSlots) {
  EXPECT_EQ(key_slot("foo"), 12182);
  EXPECT_EQ(key_slot("user1000"), 3443);
  EXPECT_EQ(key_slot("{user1000}.following"), 3443);
  EXPECT_EQ(key_slot("{user1000}.followers"), 3443);
}

TEST(ClusterSlots, HashTagRulesFollowTheServer) {
  EXPECT_EQ(hashed_part("{user1000}.following"), "user1000");
  EXPECT_EQ(hashed_part("foo{}{bar}"), "foo{}{bar}");  // empty first tag: whole key
  EXPECT_EQ(hashed_part("foo{{bar}}zap"), "{bar");     // up to the first '}'
  EXPECT_EQ(hashed_part("foo{bar}{zap}"), "bar");      // only the first tag
  EXPECT_EQ(hashed_part("foo{bar"), "foo{bar");        // no closing brace
  EXPECT_EQ(hashed_part("}foo{bar}"), "bar");
}

TEST(ClusterSlots, NamespaceAndKeyHashLikeTheJoinedKey) {
  for (auto [head, tail] : {std::pair{"ns:", "key"},
                            {"", "foo"},
                            {"a{", "b}c"},
                            {"{t}", "x"},
                            {"n:", "{tag}rest"},
                            {"x}", "y"},
                            {"{", "}z"}}) {
    EXPECT_EQ(key_slot(head, tail), key_slot(std::string(head) + tail)) << head << tail;
  }
}

TEST(ClusterSlots, AgreeWithTheServersKeyslotForRandomKeys) {
  RawRedis node = first_cluster_node();
  std::mt19937 random(20261206);
  std::uniform_int_distribution<int> length(0, 24), byte(0, 255), brace(0, 9);
  for (int i = 0; i < 300; ++i) {
    std::string key;
    for (int n = length(random); n > 0; --n) {
      int choice = brace(random);  // a brace in one of ten bytes exercises the tag rules
      key += choice == 0 ? '{' : choice == 1 ? '}' : static_cast<char>(byte(random));
    }
    auto reply = node.command({"CLUSTER", "KEYSLOT", key});
    ASSERT_EQ(reply.type, REDIS_REPLY_INTEGER) << reply.str;
    EXPECT_EQ(key_slot(key), reply.integer) << "key of " << key.size() << " bytes";
  }
}

}  // namespace
}  // namespace cachekit::redis_internal
