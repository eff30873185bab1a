// The per-route auth filter: replies (status, RFC 6750 challenges) and forwarded-header edits.
#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "filter/jwt/jwt.h"
#include "token_minter.h"

namespace ringway::filter::jwt {
namespace {

constexpr int64_t kNow = 1'700'000'000;
int64_t fixed_clock() { return kNow; }

struct Harness {
  http::Request req;
  route::Match match;
  http::HeaderEdits edits;
  std::deque<std::string> storage;  // request views must outlive the test's temporaries
  void header(std::string_view n, std::string_view v) {
    storage.emplace_back(v);
    req.headers[req.header_count++] = http::Header{n, storage.back()};
  }
  Verdict run(Filter& f, uint32_t route_index) {
    match.route_index = route_index;
    edits = {};
    ctx = std::make_unique<RequestContext>(RequestContext{req, match, "127.0.0.1", 0, edits});
    return f.on_request(*ctx);
  }
  std::unique_ptr<RequestContext> ctx;
  bool removed(std::string_view n) const {
    for (uint8_t i = 0; i < edits.remove_count; ++i) if (core::iequals(edits.remove[i], n)) return true;
    return false;
  }
  std::string added(std::string_view n) const {
    for (uint8_t i = 0; i < edits.add_count; ++i) if (edits.add[i].name == n) return std::string(edits.add[i].value);
    return "<none>";
  }
  std::string challenge() const {
    return ctx->reply.header_count > 0 ? std::string(ctx->reply.headers[0].value) : "<none>";
  }
};

class AuthFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    JwtConfig cfg;
    cfg.claim_headers = {{"sub", "X-User-Id"}};
    KeySet ks;
    std::string err;
    ASSERT_TRUE(ks.add_secret("k", secret_, Alg::kHS256, err));
    auto jwt = make_jwt_state(cfg, std::move(ks), err);
    ASSERT_TRUE(jwt) << err;
    api_key::ApiKeyConfig ac;
    ac.keys = {{"mobile", "key-123"}};
    auto keys = api_key::KeyStore::build(ac, err);
    ASSERT_TRUE(keys) << err;
    RouteAuth none, jwt_route, key_route, any_route, scoped;
    jwt_route.mode = AuthMode::kJwt;
    key_route.mode = AuthMode::kApiKey;
    any_route.mode = AuthMode::kAny;
    scoped.mode = AuthMode::kJwt;
    scoped.scopes = {"admin"};
    factory_ = std::make_unique<AuthFilterFactory>(jwt, keys, std::vector<RouteAuth>{none, jwt_route, key_route, any_route, scoped},
                                                   jwt_route, &fixed_clock);
    ASSERT_TRUE(factory_->validate(err)) << err;
    filter_ = factory_->create(0, 1);
  }
  std::string token(const std::string& claims) {
    return testing::mint(Alg::kHS256, nullptr, secret_, testing::header_for(Alg::kHS256, "k"), claims);
  }
  std::string secret_ = std::string(32, 'q');
  std::unique_ptr<AuthFilterFactory> factory_;
  std::unique_ptr<Filter> filter_;
};

TEST_F(AuthFilterTest, NoneRouteContinuesButDropsSpoofedIdentity) {
  Harness h;
  h.header("X-User-Id", "admin");
  h.header("x-consumer", "mobile");
  EXPECT_EQ(h.run(*filter_, 0), Verdict::kContinue);
  EXPECT_TRUE(h.removed("X-User-Id"));
  EXPECT_TRUE(h.removed("X-Consumer"));
  EXPECT_EQ(h.edits.add_count, 0);
}

TEST_F(AuthFilterTest, MissingTokenHasBareChallenge) {
  Harness h;
  EXPECT_EQ(h.run(*filter_, 1), Verdict::kRespond);
  EXPECT_EQ(h.ctx->reply.status, 401);
  EXPECT_EQ(h.challenge(), "Bearer");
  Harness basic;
  basic.header("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
  EXPECT_EQ(basic.run(*filter_, 1), Verdict::kRespond);
  EXPECT_EQ(basic.challenge(), "Bearer");
  Harness beyond;  // route index past the table: default_auth (jwt)
  EXPECT_EQ(beyond.run(*filter_, 99), Verdict::kRespond);
}

TEST_F(AuthFilterTest, ValidTokenForwardsClaimAfterRemovingClientCopy) {
  std::string tok = "Bearer " + token("{\"sub\":\"alice\",\"exp\":" + std::to_string(kNow + 60) + "}");
  Harness h;
  h.header("authorization", tok);
  h.header("X-User-Id", "root");
  ASSERT_EQ(h.run(*filter_, 1), Verdict::kContinue) << h.ctx->reply.detail << " " << tok;
  EXPECT_TRUE(h.removed("X-User-Id"));
  EXPECT_EQ(h.added("X-User-Id"), "alice");
  Harness lower;  // scheme is case-insensitive
  lower.header("Authorization", "bearer " + tok.substr(7));
  EXPECT_EQ(lower.run(*filter_, 1), Verdict::kContinue);
}

TEST_F(AuthFilterTest, BadTokenAndScope) {
  Harness h;
  h.header("Authorization", "Bearer " + token("{\"sub\":\"alice\",\"exp\":" + std::to_string(kNow - 600) + "}"));
  EXPECT_EQ(h.run(*filter_, 1), Verdict::kRespond);
  EXPECT_EQ(h.ctx->reply.status, 401);
  EXPECT_EQ(h.challenge(), "Bearer error=\"invalid_token\"");
  EXPECT_EQ(h.ctx->reply.detail, "token expired");
  EXPECT_EQ(h.edits.add_count, 0);

  Harness s;
  s.header("Authorization", "Bearer " + token("{\"sub\":\"alice\",\"scope\":\"read\",\"exp\":" + std::to_string(kNow + 60) + "}"));
  EXPECT_EQ(s.run(*filter_, 4), Verdict::kRespond);
  EXPECT_EQ(s.ctx->reply.status, 403);
  EXPECT_EQ(s.challenge(), "Bearer error=\"insufficient_scope\"");
  Harness ok;
  ok.header("Authorization", "Bearer " + token("{\"sub\":\"alice\",\"scope\":\"read admin\",\"exp\":" + std::to_string(kNow + 60) + "}"));
  EXPECT_EQ(ok.run(*filter_, 4), Verdict::kContinue);

  Harness two;
  two.header("Authorization", "Bearer a.b.c");
  two.header("Authorization", "Bearer d.e.f");
  EXPECT_EQ(two.run(*filter_, 1), Verdict::kRespond);
  EXPECT_EQ(two.ctx->reply.status, 400);
}

TEST_F(AuthFilterTest, ApiKeyAndAnyModes) {
  Harness k;
  k.header("X-API-Key", "key-123");
  k.header("X-Consumer", "someone-else");
  ASSERT_EQ(k.run(*filter_, 2), Verdict::kContinue);
  EXPECT_TRUE(k.removed("X-API-Key"));
  EXPECT_TRUE(k.removed("X-Consumer"));
  EXPECT_EQ(k.added("X-Consumer"), "mobile");
  EXPECT_EQ(k.run(*filter_, 1), Verdict::kRespond);  // a jwt route does not take API keys
  EXPECT_EQ(k.run(*filter_, 3), Verdict::kContinue);  // any

  Harness none;
  EXPECT_EQ(none.run(*filter_, 3), Verdict::kRespond);
  EXPECT_EQ(none.ctx->reply.status, 401);
  EXPECT_EQ(none.challenge(), "Bearer");

  // A bad bearer token on an `any` route is not rescued by a good API key.
  Harness both;
  both.header("Authorization", "Bearer x.y.z");
  both.header("X-API-Key", "key-123");
  EXPECT_EQ(both.run(*filter_, 3), Verdict::kRespond);
  EXPECT_EQ(both.challenge(), "Bearer error=\"invalid_token\"");

  Harness wrong;
  wrong.header("X-API-Key", "key-124");
  EXPECT_EQ(wrong.run(*filter_, 2), Verdict::kRespond);
  EXPECT_EQ(wrong.ctx->reply.status, 401);
}

TEST(AuthFilterValidate, ModesNeedCredentials) {
  RouteAuth jwt_route;
  jwt_route.mode = AuthMode::kJwt;
  AuthFilterFactory f(nullptr, nullptr, {jwt_route}, RouteAuth{});
  std::string err;
  EXPECT_FALSE(f.validate(err));
  EXPECT_NE(err.find("route #0"), std::string::npos);
  AuthMode m;
  EXPECT_TRUE(auth_mode_from_name("api-key", m));
  EXPECT_EQ(m, AuthMode::kApiKey);
  EXPECT_FALSE(auth_mode_from_name("jwt ", m));
}

}  // namespace
}  // namespace ringway::filter::jwt
