#include "agg/json_text.h"

#include <gtest/gtest.h>

namespace ringway::agg::json_text {
namespace {

// Escaping itself is core's (tests/unit/core/json_escape_test.cc); agg gets it unquoted.
TEST(JsonText, EscapedIsCoreEscapingWithoutQuotes) {
  EXPECT_EQ(escaped("a\"b\n"), "a\\\"b\\n");
  EXPECT_EQ(escaped("caf\xC3\xA9 \xFF"), "caf\xC3\xA9 \\u00ff");
}

TEST(JsonText, NumberGrammar) {
  for (const char* ok : {"0", "-0", "1", "-12", "1.5", "0.25", "1e5", "1E+5", "2e-3",
                         "18446744073709551616", "-0.0e0"})
    EXPECT_TRUE(is_number(ok)) << ok;
  for (const char* bad : {"", "-", "01", "1.", ".5", "1e", "1e+", "+1", "0x10", "1.5.5", "NaN",
                          "12abc", "--1"})
    EXPECT_FALSE(is_number(bad)) << bad;
}

TEST(JsonText, StringEscapes) {
  EXPECT_TRUE(has_valid_escapes(R"("abc")"));
  EXPECT_TRUE(has_valid_escapes(R"("\"\\\/\b\f\n\r\t\u00e9\uD83D")"));
  EXPECT_FALSE(has_valid_escapes(R"("\x")"));
  EXPECT_FALSE(has_valid_escapes(R"("\u12")"));
  EXPECT_FALSE(has_valid_escapes(R"("\u12G4")"));
  EXPECT_FALSE(has_valid_escapes(R"("\')"));
}

TEST(JsonText, Trim) {
  EXPECT_EQ(trim(" \t\r\n{} \n"), "{}");
  EXPECT_EQ(trim("   "), "");
}

}  // namespace
}  // namespace ringway::agg::json_text
