// API-key filter: parsing helpers, lookup by header and query, consumer forwarding.
#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "filter/api_key/api_key.h"

namespace ringway::filter::api_key {
namespace {

struct Harness {
  http::Request req;
  route::Match match;
  http::HeaderEdits edits;
  std::unique_ptr<RequestContext> ctx;
  std::deque<std::string> storage;  // request views must outlive the test's temporaries
  void header(std::string_view n, std::string_view v) {
    storage.emplace_back(v);
    req.headers[req.header_count++] = http::Header{n, storage.back()};
  }
  void query(std::string_view q) { req.query = q; req.has_query = true; }
  Verdict run(Filter& f) {
    edits = {};
    ctx = std::make_unique<RequestContext>(RequestContext{req, match, "127.0.0.1", 0, edits});
    return f.on_request(*ctx);
  }
  bool removed(std::string_view n) const {
    for (uint8_t i = 0; i < edits.remove_count; ++i) if (core::iequals(edits.remove[i], n)) return true;
    return false;
  }
  std::string added(std::string_view n) const {
    for (uint8_t i = 0; i < edits.add_count; ++i) if (edits.add[i].name == n) return std::string(edits.add[i].value);
    return "<none>";
  }
};

std::shared_ptr<const KeyStore> store(std::string query_param = "") {
  ApiKeyConfig cfg;
  cfg.keys = {{"mobile", "k-mobile-1"}, {"partner", "p@rtner/key"}};
  cfg.query_param = std::move(query_param);
  std::string err;
  auto s = KeyStore::build(cfg, err);
  EXPECT_TRUE(s) << err;
  return s;
}

TEST(ApiKeyParse, EntriesAndFiles) {
  Entry e;
  std::string err;
  ASSERT_TRUE(parse_entry("mobile=abc=def", e, err));
  EXPECT_EQ(e.name, "mobile");
  EXPECT_EQ(e.key, "abc=def");
  EXPECT_FALSE(parse_entry("no-equals", e, err));
  EXPECT_FALSE(parse_entry("=key", e, err));
  EXPECT_FALSE(parse_entry("bad name=key", e, err));
  EXPECT_FALSE(parse_entry("name=has space-secretvalue", e, err));
  EXPECT_EQ(err.find("secretvalue"), std::string::npos);  // errors never echo the key
  std::vector<Entry> out;
  ASSERT_TRUE(parse_keys_text("# consumers\n\nmobile=k1\r\n  partner=k2  \n", out, err)) << err;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].name, "partner");
  EXPECT_EQ(out[1].key, "k2");
  out.clear();
  EXPECT_FALSE(parse_keys_text("a=1\nbroken-line-s3cr3t\n", out, err));
  EXPECT_NE(err.find("line 2"), std::string::npos);
  EXPECT_EQ(err.find("s3cr3t"), std::string::npos);
  EXPECT_FALSE(load_keys_file("/nonexistent/keys", out, err));
}

TEST(ApiKeyStore, BuildRejectsDuplicates) {
  ApiKeyConfig cfg;
  std::string err;
  EXPECT_FALSE(KeyStore::build(cfg, err));
  cfg.keys = {{"a", "same"}, {"b", "same"}};
  EXPECT_FALSE(KeyStore::build(cfg, err));
  cfg.keys = {{"a", "k1"}, {"a", "k2"}};
  EXPECT_FALSE(KeyStore::build(cfg, err));
}

TEST(ApiKeyFilter, RightKeyForwardsConsumerAndDropsKeyAndSpoof) {
  ApiKeyFilterFactory f(store());
  auto filter = f.create(0, 1);
  Harness h;
  h.header("x-api-key", "k-mobile-1");
  h.header("X-Consumer", "partner");  // spoofed
  ASSERT_EQ(h.run(*filter), Verdict::kContinue);
  EXPECT_TRUE(h.removed("X-API-Key"));
  EXPECT_TRUE(h.removed("X-Consumer"));
  EXPECT_EQ(h.added("X-Consumer"), "mobile");
}

TEST(ApiKeyFilter, WrongMissingAndAmbiguousKeys) {
  ApiKeyFilterFactory f(store());
  auto filter = f.create(0, 1);
  Harness wrong;
  wrong.header("X-API-Key", "k-mobile-2");
  EXPECT_EQ(wrong.run(*filter), Verdict::kRespond);
  EXPECT_EQ(wrong.ctx->reply.status, 401);
  EXPECT_EQ(wrong.ctx->reply.detail, "invalid API key");
  EXPECT_EQ(wrong.edits.add_count, 0);
  Harness prefix;
  prefix.header("X-API-Key", "k-mobile-");
  EXPECT_EQ(prefix.run(*filter), Verdict::kRespond);
  Harness missing;
  EXPECT_EQ(missing.run(*filter), Verdict::kRespond);
  EXPECT_EQ(missing.ctx->reply.detail, "missing API key");
  EXPECT_EQ(missing.ctx->reply.headers[0].name, "WWW-Authenticate");
  Harness two;
  two.header("X-API-Key", "k-mobile-1");
  two.header("X-API-Key", "p@rtner/key");
  EXPECT_EQ(two.run(*filter), Verdict::kRespond);
  Harness query_ignored;  // no query parameter configured
  query_ignored.query("api_key=k-mobile-1");
  EXPECT_EQ(query_ignored.run(*filter), Verdict::kRespond);
}

TEST(ApiKeyFilter, KeyInQueryParameter) {
  ApiKeyFilterFactory f(store("api_key"));
  auto filter = f.create(0, 1);
  Harness h;
  h.query("a=1&api_key=p%40rtner%2Fkey&b=2");
  ASSERT_EQ(h.run(*filter), Verdict::kContinue);
  EXPECT_EQ(h.added("X-Consumer"), "partner");
  Harness bad_escape;
  bad_escape.query("api_key=p%4");
  EXPECT_EQ(bad_escape.run(*filter), Verdict::kRespond);
  Harness both;  // header and query: ambiguous
  both.query("api_key=k-mobile-1");
  both.header("X-API-Key", "k-mobile-1");
  EXPECT_EQ(both.run(*filter), Verdict::kRespond);
  Harness other;
  other.query("xapi_key=k-mobile-1");
  EXPECT_EQ(other.run(*filter), Verdict::kRespond);
  EXPECT_EQ(other.ctx->reply.detail, "missing API key");
}

}  // namespace
}  // namespace ringway::filter::api_key
