#include <gtest/gtest.h>

#include "ringway/agg/endpoint.h"

namespace ringway::agg {
namespace {

TEST(MatchPath, LiteralAndParams) {
  PathParams p;
  ASSERT_TRUE(match_path("/users/{id}/orders/{oid}", "/users/42/orders/7", p));
  ASSERT_EQ(p.count, 2u);
  EXPECT_EQ(p.find("id"), "42");
  EXPECT_EQ(p.find("oid"), "7");
  EXPECT_EQ(p.find("nope"), "");
  EXPECT_TRUE(match_path("/", "/", p));
  EXPECT_EQ(p.count, 0u);
  EXPECT_TRUE(match_path("/a/b", "/a/b", p));
}

TEST(MatchPath, Mismatches) {
  PathParams p;
  EXPECT_FALSE(match_path("/users/{id}", "/users", p));
  EXPECT_FALSE(match_path("/users/{id}", "/users/", p));       // empty segment
  EXPECT_FALSE(match_path("/users/{id}", "/users/1/", p));     // trailing slash matters
  EXPECT_FALSE(match_path("/users/{id}", "/users/1/x", p));
  EXPECT_FALSE(match_path("/users/{id}", "/Users/1", p));
  EXPECT_FALSE(match_path("/a/b", "/a/bc", p));
  EXPECT_FALSE(match_path("/a", "", p));
  EXPECT_FALSE(match_path("/a", "a", p));
}

TEST(MatchPath, PercentEncodedValueStaysRaw) {
  PathParams p;
  ASSERT_TRUE(match_path("/u/{id}", "/u/a%2Fb", p));
  EXPECT_EQ(p.find("id"), "a%2Fb");
}

std::string expand(std::string_view tmpl, std::string_view value, bool* ok) {
  PathParams p;
  p.items[0] = {"id", value};
  p.count = 1;
  std::string out = "PRE";
  *ok = expand_path(tmpl, p, out);
  return out;
}

TEST(ExpandPath, SubstitutesAndEncodes) {
  bool ok;
  EXPECT_EQ(expand("/users/{id}/orders", "42", &ok), "PRE/users/42/orders");
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/o?user={id}", "1&admin=1", &ok), "PRE/o?user=1%26admin%3D1");
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/u/{id}", "a%3Fb", &ok), "PRE/u/a%3Fb");  // decoded '?' is re-encoded
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/u/{id}", "a?b#c", &ok), "PRE/u/a%3Fb%23c");
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/u/{id}", "caf%C3%A9 x", &ok), "PRE/u/caf%C3%A9%20x");
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/u/{id}", "A-z_0.9~", &ok), "PRE/u/A-z_0.9~");
  EXPECT_TRUE(ok);
  EXPECT_EQ(expand("/u/{id}.json", "x", &ok), "PRE/u/x.json");
  EXPECT_TRUE(ok);
}

TEST(ExpandPath, RejectsPathInjection) {
  for (const char* bad : {"a/b", "a%2Fb", "a%2fb", "..", ".", "%2e%2E", "%2E", "a%5Cb", "a\\b",
                          "a%00b", "a%0Ab", "%zz", "%4", "abc%", ""}) {
    bool ok = true;
    EXPECT_EQ(expand("/u/{id}", bad, &ok), "PRE") << bad;
    EXPECT_FALSE(ok) << bad;
  }
  bool ok;
  EXPECT_EQ(expand("/u/{id}", "...", &ok), "PRE/u/...");  // not a dot segment
  EXPECT_TRUE(ok);
}

TEST(ExpandPath, UnknownParamFails) {
  PathParams p;
  std::string out;
  EXPECT_FALSE(expand_path("/u/{id}", p, out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(expand_path("/u/{id", p, out));
}

TEST(ExpandPath, RoundTripFromMatch) {
  PathParams p;
  ASSERT_TRUE(match_path("/users/{id}", "/users/%41b", p));
  std::string out;
  ASSERT_TRUE(expand_path("/v1/u/{id}", p, out));
  EXPECT_EQ(out, "/v1/u/Ab");
}

}  // namespace
}  // namespace ringway::agg
