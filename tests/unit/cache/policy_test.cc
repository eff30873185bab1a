// RFC 9111 shared-cache rules (and RFC 5861, RFC 9211), each with exact header inputs.
#include "ringway/cache/policy.h"

#include <gtest/gtest.h>

#include "heads.h"

namespace ringway::cache {
namespace {

constexpr int64_t kT0 = 1796300000;  // "now" of these tests
// IMF-fixdate of kT0 and neighbours.
constexpr std::string_view kDateT0 = "Date: Thu, 03 Dec 2026 12:13:20 GMT";
constexpr std::string_view kDateT0m100 = "Date: Thu, 03 Dec 2026 12:11:40 GMT";  // kT0 - 100

struct Fixture : ::testing::Test {
  test::Heads h;
  Options opt;
  ResponseFacts facts(const http::Response& r) {
    return response_facts(r.headers, r.header_count, r.status, kT0);
  }
  Storable storable(const http::Request& req, const http::Response& r) {
    const CacheControl rcc = cache_control_of(req.headers, req.header_count);
    return storability(req, rcc, r, facts(r), opt);
  }
  Storable storable(const http::Response& r) { return storable(h.get({}), r); }
  // Reuse decision for a response stored at kT0 (no delay), asked at kT0 + elapsed.
  Reuse reuse(const http::Response& r, int64_t elapsed, const http::Request& req) {
    const ResponseFacts f = facts(r);
    const int64_t life = freshness_lifetime(f, kT0, opt);
    const int64_t age = current_age(f, kT0, kT0, kT0 + elapsed);
    return decide_reuse(f, life, age, request_directives(req)).action;
  }
  Reuse reuse(const http::Response& r, int64_t elapsed) { return reuse(r, elapsed, h.get({})); }
};

using Storability = Fixture;

TEST_F(Storability, Rfc9111_3_ExplicitFreshnessStored) {
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: max-age=60"})), Storable::kYes);
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: s-maxage=60"})), Storable::kYes);
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: public"})), Storable::kYes);
  EXPECT_EQ(storable(h.response(200, {kDateT0, "Expires: Thu, 03 Dec 2026 13:13:20 GMT"})),
            Storable::kYes);
  EXPECT_EQ(storable(h.response(404, {"Cache-Control: max-age=5"})), Storable::kYes);
}

TEST_F(Storability, Rfc9111_3_NoFreshnessNotStoredUnlessHeuristicOn) {
  const http::Response& r = h.response(200, {"ETag: \"x\""});
  EXPECT_EQ(storable(r), Storable::kNoFreshness);
  opt.default_ttl = 10;  // 4.2.2 heuristic turned on: 200 is heuristically cacheable
  EXPECT_EQ(storable(r), Storable::kYes);
  EXPECT_EQ(storable(h.response(302, {})), Storable::kNoFreshness);  // 302 is not
}

TEST_F(Storability, Rfc9111_3_OnlyGet) {
  const http::Response& r = h.response(200, {"Cache-Control: max-age=60"});
  EXPECT_EQ(storable(h.request("POST", "/a", {"Content-Length: 0"}), r), Storable::kMethod);
  EXPECT_EQ(storable(h.request("HEAD", "/a", {}), r), Storable::kMethod);
  EXPECT_EQ(storable(h.request("DELETE", "/a", {}), r), Storable::kMethod);
}

TEST_F(Storability, Rfc9111_3_StatusMustBeUnderstood) {
  EXPECT_EQ(storable(h.response(299, {"Cache-Control: max-age=60"})), Storable::kStatus);
  EXPECT_EQ(storable(h.response(206, {"Cache-Control: max-age=60", "Content-Range: bytes 0-0/1"})),
            Storable::kPartial);
}

TEST_F(Storability, Rfc9111_5_2_2_5_NoStoreAnd_5_2_1_5_RequestNoStore) {
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: max-age=60, no-store"})), Storable::kNoStore);
  EXPECT_EQ(storable(h.get({"Cache-Control: no-store"}), h.response(200, {"Cache-Control: max-age=60"})),
            Storable::kNoStore);
}

TEST_F(Storability, Rfc9111_5_2_2_3_MustUnderstandOverridesNoStoreForUnderstoodStatus) {
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: must-understand, no-store, max-age=60"})),
            Storable::kYes);
  EXPECT_EQ(storable(h.response(299, {"Cache-Control: must-understand, no-store, max-age=60"})),
            Storable::kStatus);
}

TEST_F(Storability, Rfc9111_5_2_2_7_PrivateNotStoredBySharedCache) {
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: private, max-age=60"})), Storable::kPrivate);
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: private=\"Set-Cookie\", max-age=60"})),
            Storable::kPrivate);
}

TEST_F(Storability, Rfc9111_3_5_AuthorizationNeedsPublicSmaxageOrMustRevalidate) {
  const http::Request& auth = h.get({"Authorization: Bearer x"});
  EXPECT_EQ(storable(auth, h.response(200, {"Cache-Control: max-age=60"})), Storable::kAuthorization);
  EXPECT_EQ(storable(auth, h.response(200, {"Cache-Control: max-age=60, public"})), Storable::kYes);
  EXPECT_EQ(storable(auth, h.response(200, {"Cache-Control: s-maxage=60"})), Storable::kYes);
  EXPECT_EQ(storable(auth, h.response(200, {"Cache-Control: max-age=60, must-revalidate"})),
            Storable::kYes);
  opt.allow_authorized = false;
  EXPECT_EQ(storable(auth, h.response(200, {"Cache-Control: public, max-age=60"})),
            Storable::kAuthorization);
}

TEST_F(Storability, Rfc9111_4_1_VaryStarNeverStored) {
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: max-age=60", "Vary: Accept, *"})),
            Storable::kVaryStar);
  EXPECT_EQ(storable(h.response(200, {"Cache-Control: max-age=60", "Vary: Accept"})), Storable::kYes);
}

using Freshness = Fixture;

TEST_F(Freshness, Rfc9111_4_2_1_SmaxageBeatsMaxAgeBeatsExpires) {
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {"Cache-Control: max-age=10, s-maxage=20",
                                                       kDateT0, "Expires: Thu, 03 Dec 2026 13:13:20 GMT"})),
                               kT0, opt),
            20);
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {"Cache-Control: max-age=10", kDateT0,
                                                       "Expires: Thu, 03 Dec 2026 13:13:20 GMT"})),
                               kT0, opt),
            10);
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {kDateT0, "Expires: Thu, 03 Dec 2026 13:13:20 GMT"})),
                               kT0, opt),
            3600);
}

TEST_F(Freshness, Rfc9111_4_2_1_ExpiresWithoutDateUsesResponseTime) {
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {"Expires: Thu, 03 Dec 2026 12:14:20 GMT"})),
                               kT0, opt),
            60);
}

TEST_F(Freshness, Rfc9111_5_3_InvalidExpiresIsInThePast) {
  const ResponseFacts f = facts(h.response(200, {kDateT0, "Expires: 0"}));
  EXPECT_TRUE(f.has_expires);
  EXPECT_EQ(freshness_lifetime(f, kT0, opt), 0);
}

TEST_F(Freshness, Rfc9111_4_2_2_HeuristicOffByDefaultAndMaxTtlCaps) {
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {"Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT"})),
                               kT0, opt),
            0);
  opt.default_ttl = 30;
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {})), kT0, opt), 30);
  EXPECT_EQ(freshness_lifetime(facts(h.response(302, {})), kT0, opt), 0);
  opt.max_ttl = 100;
  EXPECT_EQ(freshness_lifetime(facts(h.response(200, {"Cache-Control: max-age=31536000"})), kT0, opt),
            100);
}

TEST_F(Freshness, Rfc9111_4_2_3_AgeCalculation) {
  // Date 100 s before the response arrived, Age: 30 from an upstream cache, 2 s round trip,
  // resident 5 s: apparent_age = 100, corrected_age_value = 30 + 2, initial = 100, +5.
  const ResponseFacts f = facts(h.response(200, {kDateT0m100, "Age: 30"}));
  EXPECT_EQ(current_age(f, kT0 - 2, kT0, kT0 + 5), 105);
  // Age larger than the apparent age wins: corrected_age_value = 300 + 2.
  const ResponseFacts g = facts(h.response(200, {kDateT0, "Age: 300"}));
  EXPECT_EQ(current_age(g, kT0 - 2, kT0, kT0 + 5), 307);
  // A Date in the future (clock skew) gives no negative apparent age.
  const ResponseFacts s = facts(h.response(200, {"Date: Thu, 03 Dec 2026 13:13:20 GMT"}));
  EXPECT_EQ(current_age(s, kT0, kT0, kT0 + 1), 1);
  // 5.1: an invalid Age is ignored; no Date: the response time stands in.
  const ResponseFacts bad = facts(h.response(200, {"Age: x"}));
  EXPECT_EQ(current_age(bad, kT0, kT0, kT0 + 3), 3);
}

using Reuses = Fixture;

TEST_F(Reuses, Rfc9111_4_2_FreshThenStale) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60"});
  EXPECT_EQ(reuse(r, 0), Reuse::kFresh);
  EXPECT_EQ(reuse(r, 59), Reuse::kFresh);
  EXPECT_EQ(reuse(r, 60), Reuse::kRevalidate);
}

TEST_F(Reuses, Rfc9111_5_2_2_4_ResponseNoCacheAlwaysRevalidates) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60, no-cache"});
  EXPECT_EQ(reuse(r, 0), Reuse::kRevalidate);
}

TEST_F(Reuses, Rfc9111_5_2_1_4_RequestNoCacheAndPragma_5_4) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60"});
  EXPECT_EQ(reuse(r, 1, h.get({"Cache-Control: no-cache"})), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 1, h.get({"Pragma: no-cache"})), Reuse::kRevalidate);
  // 5.4: Pragma is ignored when Cache-Control is present.
  EXPECT_EQ(reuse(r, 1, h.get({"Pragma: no-cache", "Cache-Control: max-stale=1"})), Reuse::kFresh);
}

TEST_F(Reuses, Rfc9111_5_2_1_1_RequestMaxAge) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60"});
  EXPECT_EQ(reuse(r, 0, h.get({"Cache-Control: max-age=0"})), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 10, h.get({"Cache-Control: max-age=5"})), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 10, h.get({"Cache-Control: max-age=20"})), Reuse::kFresh);
}

TEST_F(Reuses, Rfc9111_5_2_1_3_MinFresh) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60"});
  EXPECT_EQ(reuse(r, 50, h.get({"Cache-Control: min-fresh=20"})), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 30, h.get({"Cache-Control: min-fresh=20"})), Reuse::kFresh);
}

TEST_F(Reuses, Rfc9111_5_2_1_2_MaxStale) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60"});
  EXPECT_EQ(reuse(r, 70, h.get({"Cache-Control: max-stale=10"})), Reuse::kStale);
  EXPECT_EQ(reuse(r, 71, h.get({"Cache-Control: max-stale=10"})), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 100000, h.get({"Cache-Control: max-stale"})), Reuse::kStale);
}

TEST_F(Reuses, Rfc9111_4_2_4_MustRevalidateProxyRevalidateSmaxageForbidStale) {
  for (std::string_view cc : {"Cache-Control: max-age=60, must-revalidate",
                              "Cache-Control: max-age=60, proxy-revalidate",
                              "Cache-Control: s-maxage=60",
                              "Cache-Control: max-age=60, must-revalidate, stale-while-revalidate=100"}) {
    const http::Response& r = h.response(200, {kDateT0, cc});
    EXPECT_EQ(reuse(r, 10), Reuse::kFresh) << cc;
    EXPECT_EQ(reuse(r, 70, h.get({"Cache-Control: max-stale"})), Reuse::kRevalidate) << cc;
    EXPECT_EQ(reuse(r, 70), Reuse::kRevalidate) << cc;
  }
}

TEST_F(Reuses, Rfc5861_3_StaleWhileRevalidate) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60, stale-while-revalidate=30"});
  EXPECT_EQ(reuse(r, 30), Reuse::kFresh);
  EXPECT_EQ(reuse(r, 75), Reuse::kStaleWhileRevalidate);
  EXPECT_EQ(reuse(r, 90), Reuse::kStaleWhileRevalidate);
  EXPECT_EQ(reuse(r, 91), Reuse::kRevalidate);
  EXPECT_EQ(reuse(r, 75, h.get({"Cache-Control: no-cache"})), Reuse::kRevalidate);
}

TEST_F(Reuses, Rfc5861_4_StaleIfError) {
  const http::Response& r = h.response(200, {kDateT0, "Cache-Control: max-age=60, stale-if-error=100"});
  const ResponseFacts f = facts(r);
  const RequestDirectives none = request_directives(h.get({}));
  EXPECT_TRUE(stale_if_error_allows(f, 60, 150, none));
  EXPECT_TRUE(stale_if_error_allows(f, 60, 160, none));
  EXPECT_FALSE(stale_if_error_allows(f, 60, 161, none));
  // In the request too.
  const ResponseFacts plain = facts(h.response(200, {kDateT0, "Cache-Control: max-age=60"}));
  EXPECT_FALSE(stale_if_error_allows(plain, 60, 70, none));
  EXPECT_TRUE(stale_if_error_allows(plain, 60, 70, request_directives(h.get({"Cache-Control: stale-if-error=20"}))));
  // 5.2.2.2: must-revalidate forbids it even on error.
  const ResponseFacts mr = facts(h.response(200, {kDateT0, "Cache-Control: max-age=60, must-revalidate, stale-if-error=100"}));
  EXPECT_FALSE(stale_if_error_allows(mr, 60, 70, none));
  EXPECT_TRUE(is_error_status(500));
  EXPECT_TRUE(is_error_status(504));
  EXPECT_FALSE(is_error_status(404));
}

using VaryRules = Fixture;

TEST_F(VaryRules, Rfc9111_4_1_SecondaryKeyFromNamedFields) {
  const http::Response& r = h.response(200, {"Vary: Accept-Encoding, accept-language", "Vary: X-A"});
  const http::Request& gz = h.get({"Accept-Encoding: gzip", "Accept-Language: en", "Accept-Language: fr"});
  std::string key;
  ASSERT_TRUE(secondary_key(r.headers, r.header_count, gz, key));
  EXPECT_EQ(key, "accept-encoding:gzip\naccept-language:en, fr\nx-a\n");
  EXPECT_TRUE(secondary_key_matches(key, gz));
  EXPECT_TRUE(secondary_key_matches(key, h.get({"accept-encoding: gzip", "Accept-Language: en, fr"})));
  EXPECT_FALSE(secondary_key_matches(key, h.get({"Accept-Encoding: br", "Accept-Language: en, fr"})));
  // An absent field matches only an absent field, not an empty one.
  EXPECT_FALSE(secondary_key_matches(key, h.get({"Accept-Encoding: gzip", "Accept-Language: en, fr", "X-A:"})));
  EXPECT_FALSE(secondary_key_matches(key, h.get({"Accept-Language: en, fr"})));
  const http::Response& star = h.response(200, {"Vary: *"});
  EXPECT_FALSE(secondary_key(star.headers, star.header_count, gz, key));
  const http::Response& none = h.response(200, {});
  ASSERT_TRUE(secondary_key(none.headers, none.header_count, gz, key));
  EXPECT_EQ(key, "");
  EXPECT_TRUE(secondary_key_matches("", gz));
}

using Keys = Fixture;

TEST_F(Keys, Rfc9111_4_PrimaryKeyNormalized) {
  EXPECT_EQ(primary_key("HTTP", "Example.COM:80", "/a/B", true, "x=1"), "http://example.com/a/B?x=1");
  EXPECT_EQ(primary_key("https", "h:443", "", false, ""), "https://h/");
  EXPECT_EQ(primary_key("https", "h:8443", "/", true, ""), "https://h:8443/?");
  EXPECT_EQ(primary_key("http", h.request("HEAD", "/p?q", {})), "http://example.com/p?q");
  EXPECT_EQ(primary_key("http", h.request("GET", "/p?q", {})), "http://example.com/p?q");
}

TEST_F(Keys, Rfc9111_4_4_UnsafeMethodInvalidatesTargetLocationContentLocation) {
  const http::Request& post = h.request("POST", "/items/1", {"Content-Length: 0"});
  auto keys = invalidation_keys("http", post, h.response(201, {"Location: /items/2",
                                                                "Content-Location: http://EXAMPLE.com/items/3"}));
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0], "http://example.com/items/1");
  EXPECT_EQ(keys[1], "http://example.com/items/2");
  EXPECT_EQ(keys[2], "http://example.com/items/3");
  // Relative reference resolved against the target's directory.
  keys = invalidation_keys("http", post, h.response(200, {"Location: 4?x"}));
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1], "http://example.com/items/4?x");
}

TEST_F(Keys, Rfc9111_4_4_OtherOriginErrorStatusAndSafeMethodsDoNot) {
  const http::Request& put = h.request("PUT", "/a", {"Content-Length: 0"});
  auto keys = invalidation_keys("http", put, h.response(200, {"Location: http://other.example/a",
                                                               "Content-Location: https://example.com/a"}));
  ASSERT_EQ(keys.size(), 1u);  // other host, other scheme: not invalidated
  EXPECT_TRUE(invalidation_keys("http", put, h.response(500, {})).empty());
  EXPECT_TRUE(invalidation_keys("http", put, h.response(404, {})).empty());
  EXPECT_TRUE(invalidation_keys("http", h.get({}), h.response(200, {})).empty());
  EXPECT_EQ(invalidation_keys("http", h.request("DELETE", "/a", {}), h.response(204, {})).size(), 1u);
  // "//example.com.evil/" is another host, not a prefix match.
  keys = invalidation_keys("http", put, h.response(200, {"Location: //example.com.evil/a"}));
  EXPECT_EQ(keys.size(), 1u);
}

using Conditional = Fixture;

TEST_F(Conditional, Rfc9110_8_8_3_2_WeakComparison) {
  EXPECT_TRUE(weak_etag_match("W/\"1\"", "W/\"1\""));
  EXPECT_TRUE(weak_etag_match("W/\"1\"", "\"1\""));
  EXPECT_TRUE(weak_etag_match("\"1\"", "\"1\""));
  EXPECT_FALSE(weak_etag_match("W/\"1\"", "W/\"2\""));
  EXPECT_TRUE(if_none_match_matches("\"a\", W/\"x,y\" ,\"c\"", "\"x,y\""));
  EXPECT_TRUE(if_none_match_matches("*", "\"q\""));
  EXPECT_FALSE(if_none_match_matches("\"a\", \"b\"", "\"c\""));
}

TEST_F(Conditional, Rfc9111_4_3_2_ClientIfNoneMatch) {
  const ResponseFacts f = facts(h.response(200, {kDateT0, "ETag: \"v1\"", "Cache-Control: max-age=60"}));
  EXPECT_EQ(evaluate_conditional(h.get({}), f, kT0, kT0), ClientConditional::kNone);
  EXPECT_EQ(evaluate_conditional(h.get({"If-None-Match: W/\"v1\""}), f, kT0, kT0),
            ClientConditional::kNotModified);
  EXPECT_EQ(evaluate_conditional(h.get({"If-None-Match: \"v0\", \"v1\""}), f, kT0, kT0),
            ClientConditional::kNotModified);
  EXPECT_EQ(evaluate_conditional(h.get({"If-None-Match: \"v2\""}), f, kT0, kT0),
            ClientConditional::kFailed);
  // RFC 9110 13.1.3: If-Modified-Since is ignored when If-None-Match is present.
  EXPECT_EQ(evaluate_conditional(h.get({"If-None-Match: \"v2\"", "If-Modified-Since: Thu, 03 Dec 2026 12:13:20 GMT"}),
                                 f, kT0, kT0),
            ClientConditional::kFailed);
}

TEST_F(Conditional, Rfc9111_4_3_2_ClientIfModifiedSince) {
  const ResponseFacts f = facts(h.response(200, {kDateT0, "Last-Modified: Thu, 03 Dec 2026 12:11:40 GMT"}));
  EXPECT_EQ(evaluate_conditional(h.get({"If-Modified-Since: Thu, 03 Dec 2026 12:11:40 GMT"}), f, kT0, kT0),
            ClientConditional::kNotModified);
  EXPECT_EQ(evaluate_conditional(h.get({"If-Modified-Since: Thu, 03 Dec 2026 12:11:39 GMT"}), f, kT0, kT0),
            ClientConditional::kFailed);
  EXPECT_EQ(evaluate_conditional(h.get({"If-Modified-Since: yesterday"}), f, kT0, kT0),
            ClientConditional::kNone);
  // No Last-Modified: Date is the base.
  const ResponseFacts d = facts(h.response(200, {kDateT0m100}));
  EXPECT_EQ(evaluate_conditional(h.get({"If-Modified-Since: Thu, 03 Dec 2026 12:11:40 GMT"}), d, kT0, kT0),
            ClientConditional::kNotModified);
  EXPECT_TRUE(sent_in_304("ETag"));
  EXPECT_TRUE(sent_in_304("cache-control"));
  EXPECT_FALSE(sent_in_304("Content-Type"));
}

TEST_F(Conditional, Rfc9111_4_3_1_RevalidationValidators) {
  const http::Response& r = h.response(200, {"ETag: W/\"7\"", "Last-Modified: Thu, 03 Dec 2026 12:11:40 GMT"});
  const Validators v = revalidation_validators(r.headers, r.header_count);
  EXPECT_EQ(v.if_none_match, "W/\"7\"");
  EXPECT_EQ(v.if_modified_since, "Thu, 03 Dec 2026 12:11:40 GMT");
  const http::Response& none = h.response(200, {});
  const Validators n = revalidation_validators(none.headers, none.header_count);
  EXPECT_TRUE(n.if_none_match.empty());
  EXPECT_TRUE(n.if_modified_since.empty());
}

TEST_F(Conditional, Rfc9111_4_3_4_NotModifiedSelectsByValidator) {
  const ResponseFacts strong = facts(h.response(200, {"ETag: \"s\""}));
  const ResponseFacts weak = facts(h.response(200, {"ETag: W/\"s\""}));
  EXPECT_TRUE(not_modified_selects(strong, h.response(304, {"ETag: \"s\""})));
  EXPECT_FALSE(not_modified_selects(strong, h.response(304, {"ETag: \"t\""})));
  EXPECT_FALSE(not_modified_selects(weak, h.response(304, {"ETag: \"s\""})));  // strong needs strong
  EXPECT_TRUE(not_modified_selects(weak, h.response(304, {"ETag: W/\"s\""})));
  EXPECT_TRUE(not_modified_selects(strong, h.response(304, {"ETag: W/\"s\""})));
  EXPECT_TRUE(not_modified_selects(facts(h.response(200, {})), h.response(304, {})));
  EXPECT_FALSE(not_modified_selects(strong, h.response(304, {})));
}

TEST_F(Conditional, Rfc9111_3_2_And_4_3_4_HeadersUpdatedFrom304) {
  const http::Response& stored = h.response(200, {"Cache-Control: max-age=10", "ETag: \"s\"",
                                                    "Content-Type: text/plain", "X-Old: 1", "X-Old: 2"});
  const http::Response& nm = h.response(304, {"Cache-Control: max-age=99", "ETag: \"s\"", "X-Old: 3",
                                              "Content-Length: 5", "Connection: close, X-Hop", "X-Hop: h",
                                              "Keep-Alive: timeout=5"});
  const auto out = updated_headers(stored.headers, stored.header_count, nm);
  std::string flat;
  for (const auto& f : out) flat.append(f.name).append(": ").append(f.value).append("\n");
  // Stored Content-Length (added by the helper) kept; the 304's is not taken (3.2), nor its
  // hop-by-hop and Connection-named fields.
  EXPECT_EQ(flat,
            "Content-Type: text/plain\nContent-Length: 0\nCache-Control: max-age=99\nETag: \"s\"\nX-Old: 3\n");
}

TEST_F(Conditional, Rfc9111_3_1_HopByHopNotStored) {
  const http::Response& r = h.response(200, {"Connection: X-Secret", "X-Secret: 1", "Keep-Alive: a"});
  EXPECT_FALSE(stored_field("X-Secret", r));
  EXPECT_FALSE(stored_field("keep-alive", r));
  EXPECT_FALSE(stored_field("Connection", r));
  EXPECT_TRUE(stored_field("Content-Type", r));
}

TEST(CacheStatusHeader, Rfc9211_Formats) {
  char buf[256];
  CacheStatus hit;
  hit.hit = true;
  hit.has_ttl = true;
  hit.ttl = 42;
  EXPECT_EQ(std::string(buf, format_cache_status("ringway", hit, buf, sizeof buf)), "ringway; hit; ttl=42");
  CacheStatus miss;
  miss.fwd = Forward::kUriMiss;
  miss.fwd_status = 200;
  miss.stored = true;
  miss.collapsed = true;
  EXPECT_EQ(std::string(buf, format_cache_status("ringway", miss, buf, sizeof buf)),
            "ringway; fwd=uri-miss; fwd-status=200; stored; collapsed");
  CacheStatus stale;
  stale.hit = true;
  stale.has_ttl = true;
  stale.ttl = -5;
  stale.detail = "stale-if-error";
  EXPECT_EQ(std::string(buf, format_cache_status("ringway", stale, buf, sizeof buf)),
            "ringway; hit; ttl=-5; detail=stale-if-error");
  stale.detail = "upstream said \"no\"";
  EXPECT_EQ(std::string(buf, format_cache_status("ringway", stale, buf, sizeof buf)),
            "ringway; hit; ttl=-5; detail=\"upstream said \\\"no\\\"\"");
  CacheStatus reval;
  reval.fwd = Forward::kStale;
  reval.fwd_status = 304;
  EXPECT_EQ(std::string(buf, format_cache_status("ringway", reval, buf, sizeof buf)),
            "ringway; fwd=stale; fwd-status=304");
  EXPECT_EQ(format_cache_status("ringway", reval, buf, 5), 0u);
}

}  // namespace
}  // namespace ringway::cache
