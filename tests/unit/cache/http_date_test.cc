// HTTP-date, RFC 9110 5.6.7: the three forms a recipient must accept, and formatting.
#include "ringway/cache/http_date.h"

#include <gtest/gtest.h>

#include <string>

namespace ringway::cache {
namespace {

constexpr int64_t k1994 = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr int64_t kNow2026 = 1796300000;

TEST(HttpDate, Rfc9110_5_6_7_ThreeFormsSameInstant) {
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", kNow2026), k1994);
  EXPECT_EQ(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", 900000000), k1994);
  EXPECT_EQ(parse_http_date("Sun Nov  6 08:49:37 1994", kNow2026), k1994);
  EXPECT_EQ(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT", kNow2026), 0);
  EXPECT_EQ(parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT", kNow2026), 1835481599);
}

TEST(HttpDate, Rfc9110_5_6_7_Rfc850TwoDigitYearNotMoreThan50YearsAhead) {
  // Now in 2026: "76" would be 2076 (50 years on: allowed); "80" reads as 1980.
  EXPECT_EQ(parse_http_date("Friday, 01-Jan-80 00:00:00 GMT", kNow2026), 315532800);
  const auto t = parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", kNow2026);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(*t, k1994);
  EXPECT_GT(*parse_http_date("Wednesday, 01-Jan-70 00:00:00 GMT", kNow2026), kNow2026);  // 2070
}

TEST(HttpDate, Rfc9110_5_6_7_InvalidRejected) {
  for (std::string s : {"", "0", "-1", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 32 Nov 1994 08:49:37 GMT",
                        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
                        "sun, 06 nov 1994 08:49:37 GMT", "Sun, 29 Feb 2027 00:00:00 GMT",
                        "Sun, 06 Nov 1994 08:49:37 GMT ", "Sun Nov 6 08:49:37 1994",
                        "Funday, 06-Nov-94 08:49:37 GMT", "Sunday, 06-Nov-1994 08:49:37 GMT"}) {
    EXPECT_FALSE(parse_http_date(s, kNow2026).has_value()) << s;
  }
}

TEST(HttpDate, FormatsImfFixdateAndRoundTrips) {
  char buf[kHttpDateLen];
  format_http_date(k1994, buf);
  EXPECT_EQ(std::string(buf, kHttpDateLen), "Sun, 06 Nov 1994 08:49:37 GMT");
  format_http_date(0, buf);
  EXPECT_EQ(std::string(buf, kHttpDateLen), "Thu, 01 Jan 1970 00:00:00 GMT");
  for (int64_t t = 0; t < 4'000'000'000; t += 86'399 * 37 + 13) {
    format_http_date(t, buf);
    EXPECT_EQ(parse_http_date(std::string_view(buf, kHttpDateLen), kNow2026), t);
  }
}

}  // namespace
}  // namespace ringway::cache
