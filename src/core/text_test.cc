#include "core/text.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace cachekit::text {
namespace {

using Malformed = DecodePolicy::Malformed;

TEST(PercentDecode, DecodesEitherCaseOfHexDigit) {
  EXPECT_EQ(percent_decode("a%2Fb%2fc%20d", kStrictUrl), "a/b/c d");
  EXPECT_EQ(percent_decode("%00", kStrictUrl), std::string(1, '\0'));
  EXPECT_EQ(percent_decode("", kStrictUrl), "");
}

TEST(PercentDecode, RejectPolicyRefusesEveryBrokenEscape) {
  for (const char* broken : {"%", "a%", "%4", "a%4", "%zz", "%g1", "%1g", "ok%2"}) {
    EXPECT_EQ(percent_decode(broken, kStrictUrl), std::nullopt) << broken;
  }
}

TEST(PercentDecode, KeepPolicyKeepsBrokenEscapesLiterally) {
  EXPECT_EQ(percent_decode("100%", kLenientPath), "100%");
  EXPECT_EQ(percent_decode("%zz%41", kLenientPath), "%zzA");
  EXPECT_EQ(percent_decode("%4", kLenientPath), "%4");
  EXPECT_EQ(percent_decode("%%41", kLenientPath), "%A");  // the second '%' starts an escape
}

TEST(PercentDecode, PlusIsASpaceOnlyInForms) {
  EXPECT_EQ(percent_decode("a+b%2B", kForm), "a b+");
  EXPECT_EQ(percent_decode("a+b", kLenientPath), "a+b");
  EXPECT_EQ(percent_decode("a+b", kStrictUrl), "a+b");
  DecodePolicy strict_form{Malformed::kReject, true};
  EXPECT_EQ(percent_decode("a+b", strict_form), "a b");
  EXPECT_EQ(percent_decode("a+%", strict_form), std::nullopt);
}

TEST(Trim, RemovesTheGivenCharactersFromBothEnds) {
  EXPECT_EQ(trim(" \ta b\t "), "a b");
  EXPECT_EQ(trim("\r\n x \r\n"), "\r\n x \r\n");  // HTTP whitespace only by default
  EXPECT_EQ(trim("\r\n x \r\n", " \t\r\n"), "x");
  EXPECT_EQ(trim("   "), "");
  EXPECT_EQ(trim(""), "");
}

TEST(Case, LowersAndComparesAsciiOnly) {
  EXPECT_EQ(to_lower("Cache-CONTROL \xC3\x89"), "cache-control \xC3\x89");
  EXPECT_TRUE(iequals("Cache-Status", "cache-status"));
  EXPECT_FALSE(iequals("Cache-Status", "cache-statu"));
  EXPECT_FALSE(iequals("\xC3\x89", "\xC3\xA9"));
  EXPECT_EQ(ascii_upper('q'), 'Q');
  EXPECT_EQ(ascii_lower('['), '[');
}

TEST(Hex, EncodesLowerCaseAndDecodesEitherCase) {
  EXPECT_EQ(hex_encode(std::string("\x00\x7f\xff", 3)), "007fff");
  EXPECT_EQ(hex_decode("007FfF"), std::string("\x00\x7f\xff", 3));
  EXPECT_EQ(hex_decode("abc"), std::nullopt);
  EXPECT_EQ(hex_decode("zz"), std::nullopt);
  EXPECT_EQ(hex_value('F'), 15);
  EXPECT_EQ(hex_value('g'), -1);
}

}  // namespace
}  // namespace cachekit::text
