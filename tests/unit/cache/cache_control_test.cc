// Cache-Control parsing, RFC 9111 5.2.
#include "ringway/cache/cache_control.h"

#include <gtest/gtest.h>

namespace ringway::cache {
namespace {

CacheControl cc(std::string_view v) {
  CacheControl c;
  parse_cache_control(v, c);
  return c;
}

TEST(CacheControl, Rfc9111_5_2_ResponseDirectives) {
  const CacheControl c = cc("public, max-age=60, s-maxage=120, must-revalidate, proxy-revalidate, "
                            "no-transform, immutable, stale-while-revalidate=30, stale-if-error=600");
  EXPECT_TRUE(c.public_);
  EXPECT_EQ(c.max_age, 60);
  EXPECT_EQ(c.s_maxage, 120);
  EXPECT_TRUE(c.must_revalidate);
  EXPECT_TRUE(c.proxy_revalidate);
  EXPECT_TRUE(c.no_transform);
  EXPECT_TRUE(c.immutable);
  EXPECT_EQ(c.stale_while_revalidate, 30);
  EXPECT_EQ(c.stale_if_error, 600);
  EXPECT_FALSE(c.no_store);
  EXPECT_FALSE(c.private_);
}

TEST(CacheControl, Rfc9111_5_2_RequestDirectives) {
  const CacheControl c = cc("no-cache, max-stale, min-fresh=10, only-if-cached, no-store");
  EXPECT_TRUE(c.no_cache);
  EXPECT_TRUE(c.max_stale_any);
  EXPECT_EQ(c.max_stale, kAbsent);
  EXPECT_EQ(c.min_fresh, 10);
  EXPECT_TRUE(c.only_if_cached);
  EXPECT_TRUE(c.no_store);
  EXPECT_EQ(cc("max-stale=5").max_stale, 5);
  EXPECT_FALSE(cc("max-stale=5").max_stale_any);
}

TEST(CacheControl, Rfc9111_5_2_CaseWhitespaceAndQuotedValues) {
  const CacheControl c = cc("  Max-Age = \"30\" ,NO-STORE,,\tPrivate=\"Set-Cookie, X-A\"  , S-MAXAGE=7");
  EXPECT_EQ(c.max_age, 30);
  EXPECT_TRUE(c.no_store);
  EXPECT_TRUE(c.private_);  // the comma inside the quotes did not end the directive
  EXPECT_EQ(c.s_maxage, 7);
  const CacheControl q = cc("no-cache=\"a,b\", max-age=5");
  EXPECT_TRUE(q.no_cache);
  EXPECT_EQ(q.max_age, 5);
}

TEST(CacheControl, Rfc9111_5_2_3_UnknownIgnored) {
  const CacheControl c = cc("foo, bar=\"x,max-age=1\", community=\"UCI\", max-age=9");
  EXPECT_EQ(c.max_age, 9);
  EXPECT_FALSE(c.no_store);
}

TEST(CacheControl, Rfc9111_4_2_1_FirstOccurrenceAndInvalidIsStale) {
  EXPECT_EQ(cc("max-age=10, max-age=99").max_age, 10);
  EXPECT_EQ(cc("max-age=abc").max_age, 0);  // invalid freshness: treated as stale
  EXPECT_EQ(cc("max-age").max_age, 0);
  EXPECT_EQ(cc("max-age=-5").max_age, 0);
}

TEST(CacheControl, Rfc9111_1_2_2_DeltaSecondsSaturates) {
  EXPECT_EQ(cc("max-age=99999999999999999999999").max_age, kDeltaSecondsMax);
}

TEST(CacheControl, Rfc9110_5_3_LinesCombined) {
  const http::Header hs[] = {{"Cache-Control", "max-age=5"}, {"X", "y"}, {"cache-control", "private"}};
  const CacheControl c = cache_control_of(hs, 3);
  EXPECT_EQ(c.max_age, 5);
  EXPECT_TRUE(c.private_);
  EXPECT_TRUE(c.present);
  EXPECT_FALSE(cache_control_of(hs + 1, 1).present);
}

}  // namespace
}  // namespace ringway::cache
