#include "agg/json_text.h"

#include <gtest/gtest.h>

namespace ringway::agg::json_text {
namespace {

TEST(JsonText, EscapesQuotesBackslashAndControls) {
  EXPECT_EQ(escaped("plain"), "plain");
  EXPECT_EQ(escaped("a\"b\\c"), "a\\\"b\\\\c");
  EXPECT_EQ(escaped("\n\r\t\b\f"), "\\n\\r\\t\\b\\f");
  EXPECT_EQ(escaped(std::string_view("\x01\x1f\0", 3)), "\\u0001\\u001f\\u0000");
  EXPECT_EQ(escaped("\x7f"), "\x7f");  // DEL needs no escape in JSON
}

TEST(JsonText, UnicodePassesThroughAndBadUtf8IsReplaced) {
  EXPECT_EQ(escaped("caf\xC3\xA9 \xF0\x9F\x98\x80"), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  EXPECT_EQ(escaped("a\xFFz"), "a\xEF\xBF\xBDz");
  EXPECT_EQ(escaped("\xC3"), "\xEF\xBF\xBD");                  // truncated sequence
  EXPECT_EQ(escaped("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  EXPECT_EQ(escaped("\xC3\xA9\xFF\n"), "\xC3\xA9\xEF\xBF\xBD\\n");
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
