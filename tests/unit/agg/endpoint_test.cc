#include <gtest/gtest.h>

#include "ringway/agg/endpoint.h"

namespace ringway::agg {
namespace {

bool parse(const std::string& json, Endpoint& ep, std::string& err) {
  simdjson::dom::parser p;
  simdjson::dom::element el;
  if (p.parse(json).get(el)) {
    err = "test JSON invalid";
    return false;
  }
  return parse_endpoint(el, ep, err);
}

TEST(ParseEndpoint, FullExample) {
  Endpoint ep;
  std::string err;
  ASSERT_TRUE(parse(R"({
    "endpoint": "/users/{id}", "methods": ["GET", "HEAD"], "merge": "deep", "max_leg_body": 4096,
    "backends": [
      {"name": "user", "upstream": "http://127.0.0.1:8001", "path": "/v1/users/{id}",
       "deny": ["password", "meta.internal"], "mapping": {"name": "full_name"}},
      {"upstream": "http://orders:8002/api", "path": "/orders?user={id}", "group": "orders",
       "target": "data.items", "allow": ["id", "total", "a.b", "a", "x.y.z"]},
      {"upstream": "http://h", "path": "/c", "is_collection": true}
    ]})", ep, err)) << err;
  EXPECT_EQ(ep.path, "/users/{id}");
  EXPECT_EQ(ep.methods, (std::vector<std::string>{"GET", "HEAD"}));
  EXPECT_EQ(ep.merge, MergeMode::kDeep);
  EXPECT_EQ(ep.max_leg_body, 4096u);
  ASSERT_EQ(ep.backends.size(), 3u);
  const Backend& u = ep.backends[0];
  EXPECT_EQ(u.name, "user");
  ASSERT_EQ(u.deny.size(), 2u);
  EXPECT_TRUE(u.deny[0].terminal);
  EXPECT_EQ(u.deny[1].name_json, "meta");
  EXPECT_FALSE(u.deny[1].terminal);
  ASSERT_EQ(u.deny[1].children.size(), 1u);
  EXPECT_EQ(u.deny[1].children[0].name_json, "internal");
  ASSERT_EQ(u.mapping.size(), 1u);
  EXPECT_EQ(u.mapping[0].to_json, "full_name");
  EXPECT_FALSE(u.raw_reusable());
  const Backend& o = ep.backends[1];
  EXPECT_EQ(o.name, "orders");  // defaults to the group
  EXPECT_EQ(o.group_json, "orders");
  EXPECT_EQ(o.target_json, (std::vector<std::string>{"data", "items"}));
  ASSERT_EQ(o.allow.size(), 4u);  // id, total, a, x
  EXPECT_TRUE(o.allow[2].terminal);       // "a" swallows "a.b"
  EXPECT_TRUE(o.allow[2].children.empty());
  EXPECT_EQ(o.allow[3].children[0].children[0].name_json, "z");
  const Backend& c = ep.backends[2];
  EXPECT_EQ(c.name, "backend2");
  EXPECT_TRUE(c.is_collection);
  EXPECT_TRUE(c.raw_reusable());
}

TEST(ParseEndpoint, Defaults) {
  Endpoint ep;
  std::string err;
  ASSERT_TRUE(parse(R"({"endpoint": "/x", "backends": [{"upstream": "http://a", "group": "g"}]})",
                    ep, err)) << err;
  EXPECT_EQ(ep.methods, std::vector<std::string>{"GET"});
  EXPECT_EQ(ep.merge, MergeMode::kShallow);
  EXPECT_EQ(ep.max_leg_body, 1u << 20);
  EXPECT_EQ(ep.backends[0].path, "/");
  EXPECT_TRUE(ep.backends[0].raw_reusable());
}

TEST(ParseEndpoint, GroupIsEscapedForOutput) {
  Endpoint ep;
  std::string err;
  ASSERT_TRUE(parse(R"({"endpoint": "/x", "backends": [{"upstream": "http://a",
      "group": "we\"ird\n"}]})", ep, err)) << err;
  EXPECT_EQ(ep.backends[0].group_json, "we\\\"ird\\n");
  EXPECT_EQ(ep.backends[0].name, "backend0");  // the group is not a token
}

struct BadCase {
  const char* json;
  const char* error_part;
};

TEST(ParseEndpoint, Rejects) {
  const BadCase cases[] = {
      {R"([])", "expected an object"},
      {R"({"backends": [{"upstream": "http://a"}]})", "missing"},
      {R"({"endpoint": "x", "backends": [{"upstream": "http://a"}]})", "start with '/'"},
      {R"({"endpoint": "/a/{id}x", "backends": [{"upstream": "http://a"}]})", "whole segment"},
      {R"({"endpoint": "/a/{i-d}", "backends": [{"upstream": "http://a"}]})", "parameter name"},
      {R"({"endpoint": "/a/{id}/{id}", "backends": [{"upstream": "http://a"}]})", "duplicate"},
      {R"({"endpoint": "/a/{id", "backends": [{"upstream": "http://a"}]})", "unbalanced"},
      {R"({"endpoint": "/a?x=1", "backends": [{"upstream": "http://a"}]})", "query"},
      {R"({"endpoint": "/a", "backends": []})", "non-empty"},
      {R"({"endpoint": "/a"})", "backends"},
      {R"({"endpoint": "/a", "merge": "wide", "backends": [{"upstream": "http://a"}]})", "merge"},
      {R"({"endpoint": "/a", "max_leg_body": 0, "backends": [{"upstream": "http://a"}]})",
       "max_leg_body"},
      {R"({"endpoint": "/a", "extra": 1, "backends": [{"upstream": "http://a"}]})",
       "unknown field 'extra'"},
      {R"({"endpoint": "/a", "backends": [{"path": "/x"}]})", "missing upstream"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "ftp://a"}]})", "http[s]://"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "https:///a"}]})", "http[s]://"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "grp": "x"}]})",
       "unknown field 'grp'"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "path": "/u/{id}"}]})",
       "not a parameter"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "allow": ["x"],
          "deny": ["y"]}]})", "exclusive"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "allow": ["a..b"]}]})",
       "empty segment"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "allow": []}]})", "empty list"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "is_collection": true,
          "allow": ["x"]}]})", "is_collection"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "mapping": {"a": 1}}]})",
       "mapping"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "name": "a b"}]})", "token"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "name": "x"},
          {"upstream": "http://b", "group": "x"}]})", "duplicate name"},
      {R"({"endpoint": "/a", "backends": [{"upstream": "http://a", "group": ""}]})", "empty"},
  };
  for (const BadCase& c : cases) {
    Endpoint ep;
    std::string err;
    EXPECT_FALSE(parse(c.json, ep, err)) << c.json;
    EXPECT_NE(err.find(c.error_part), std::string::npos) << c.json << " -> " << err;
  }
}

}  // namespace
}  // namespace ringway::agg
