// The one JSON escaper (core/json_escape.h): RFC 8259 section 7 escapes, valid UTF-8 kept, every
// other byte made visible as \u00XX so the output is always valid JSON.
#include "ringway/core/json_escape.h"

#include <gtest/gtest.h>

#include <string>

#include "ringway/core/ascii.h"

namespace ringway::core {
namespace {

std::string escaped(std::string_view in) {
  std::string out;
  append_json_string(out, in);
  return out;
}

TEST(JsonEscape, SpecialAndControlBytes) {
  EXPECT_EQ(escaped("plain"), "\"plain\"");
  EXPECT_EQ(escaped("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(escaped("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
  EXPECT_EQ(escaped(std::string_view("\x00\x01\x1f\x7f", 4)), "\"\\u0000\\u0001\\u001f\\u007f\"");
  EXPECT_EQ(escaped("</script>"), "\"</script>\"");
}

TEST(JsonEscape, Utf8ValidPassesInvalidIsEscaped) {
  // Well-formed: 2, 3 and 4 byte sequences.
  EXPECT_EQ(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  EXPECT_EQ(escaped("\xff"), "\"\\u00ff\"");
  EXPECT_EQ(escaped("\x80"), "\"\\u0080\"");                      // lone continuation
  EXPECT_EQ(escaped("\xc0\xaf"), "\"\\u00c0\\u00af\"");           // overlong '/'
  EXPECT_EQ(escaped("\xe0\x80\xaf"), "\"\\u00e0\\u0080\\u00af\"");  // overlong 3-byte
  EXPECT_EQ(escaped("\xed\xa0\x80"), "\"\\u00ed\\u00a0\\u0080\"");  // surrogate U+D800
  EXPECT_EQ(escaped("\xf4\x90\x80\x80"), "\"\\u00f4\\u0090\\u0080\\u0080\"");  // > U+10FFFF
  EXPECT_EQ(escaped("\xe2\x82"), "\"\\u00e2\\u0082\"");           // truncated at the end
  EXPECT_EQ(escaped("\xe2\x82x"), "\"\\u00e2\\u0082x\"");         // truncated mid-string
  EXPECT_EQ(escaped("\xc3\xa9\xff\xc3\xa9"), "\"\xc3\xa9\\u00ff\xc3\xa9\"");
}

// Every line parses as JSON and the fields read back as written (for valid UTF-8 input).
TEST(JsonEscape, UnitsAreNeverSplit) {
  // A bounded writer (problem+json details) stops between units: a 2-byte UTF-8 sequence is one
  // unit, a stray byte one unit of 6 escaped bytes.
  const std::string_view s = "\xc3\xa9\xff";
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  char out[6];
  size_t used = 0;
  EXPECT_EQ(write_json_escaped_unit(p, s.size(), out, &used), 2u);
  EXPECT_EQ(used, 2u);
  EXPECT_EQ(write_json_escaped_unit(p + 2, 1, out, &used), 6u);
  EXPECT_EQ(std::string_view(out, 6), "\\u00ff");
}

TEST(Ascii, IequalsFoldsOnlyAsciiLetters) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_FALSE(iequals("content-length", "content-lengthx"));
  EXPECT_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // no Unicode folding
  EXPECT_FALSE(iequals("[", "{"));  // 0x5b vs 0x7b: a naive `| 0x20` fold would match them
  static_assert(iequals("HOST", "host"));
  EXPECT_EQ(ascii_lower(std::string_view("X-Api-KEY")), "x-api-key");
}

}  // namespace
}  // namespace ringway::core
