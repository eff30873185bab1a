// build_builtin_filters(): the config's text (specs, key sources, auth modes) becomes filter
// factories, in chain order, or a one-line error naming the flag or key.
#include "ringway/filter/builtin.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "filter/jwt/jwt.h"
#include "filter/rate_limit/rate_limit.h"

namespace ringway::filter {
namespace {

config::Config two_routes() {
  config::Config cfg;
  for (const char* prefix : {"/a/", "/b/"}) {
    config::Route r;
    r.prefix = prefix;
    cfg.routes.push_back(r);
  }
  return cfg;
}

bool build(const config::Config& cfg, std::vector<std::unique_ptr<FilterFactory>>& out,
           std::string& error) {
  out.clear();
  error.clear();
  return build_builtin_filters(cfg, out, error);
}

std::string write_temp(const std::string& text) {
  std::string path = testing::TempDir() + "ringway_builtin_XXXXXX";
  const int fd = mkstemp(path.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return path;
}

TEST(BuiltinFilters, NothingConfiguredBuildsNothing) {
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  ASSERT_TRUE(build(two_routes(), out, error)) << error;
  EXPECT_TRUE(out.empty());
}

TEST(BuiltinFilters, AuthComesBeforeRateLimits) {
  config::Config cfg = two_routes();
  cfg.rate_limits = {"10/s,key=api-key"};
  cfg.api_keys = {"alice=key-0001"};
  cfg.auth = "api-key";
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  ASSERT_TRUE(build(cfg, out, error)) << error;
  ASSERT_EQ(out.size(), 2u);
  EXPECT_NE(dynamic_cast<jwt::AuthFilterFactory*>(out[0].get()), nullptr);
  EXPECT_NE(dynamic_cast<rate_limit::RateLimitFilterFactory*>(out[1].get()), nullptr);
}

TEST(BuiltinFilters, CredentialsAloneStillStripIdentityHeaders) {
  config::Config cfg = two_routes();
  cfg.api_keys = {"alice=key-0001"};  // --auth none: the filter runs only to drop X-Consumer
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  ASSERT_TRUE(build(cfg, out, error)) << error;
  ASSERT_EQ(out.size(), 1u);
}

// The route-scoped spec applies to its route only, by index, not by path prefix.
TEST(BuiltinFilters, RouteSpecsApplyToTheirRouteOnly) {
  config::Config cfg = two_routes();
  cfg.routes[0].rate_limits = {"1/m,burst=1"};
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  ASSERT_TRUE(build(cfg, out, error)) << error;
  ASSERT_EQ(out.size(), 1u);
  std::unique_ptr<Filter> f = out[0]->create(0, 1);

  auto decide = [&](uint32_t route_index) {
    http::Request req;
    req.path = "/b/x";  // the path is irrelevant: only the route index scopes the spec
    route::Match m;
    m.route = &cfg.routes[route_index];
    m.route_index = route_index;
    http::HeaderEdits edits;
    RequestContext ctx{req, m, "127.0.0.1", 1'000'000'000, edits};
    const Verdict v = f->on_request(ctx);
    return v == Verdict::kRespond ? ctx.reply.status : 200;
  };
  EXPECT_EQ(decide(0), 200);
  EXPECT_EQ(decide(0), 429);
  EXPECT_EQ(decide(1), 200);
  EXPECT_EQ(decide(1), 200);
  EXPECT_EQ(decide(1), 200);
}

TEST(BuiltinFilters, AggregateEndpointsAreNumberedAfterTheRoutes) {
  // The engine matches aggregate k as route index routes.size() + k.
  config::Config cfg = two_routes();
  cfg.aggregates.resize(2);
  cfg.aggregates[1].rate_limits = {"1/m,burst=1"};
  cfg.aggregates[1].auth = "api-key";
  cfg.api_keys = {"alice=k-alice-0001"};
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  ASSERT_TRUE(build(cfg, out, error)) << error;
  ASSERT_EQ(out.size(), 2u);  // auth, then the rate limiter
  std::unique_ptr<Filter> auth = out[0]->create(0, 1);
  std::unique_ptr<Filter> limit = out[1]->create(0, 1);
  auto decide = [&](Filter& f, uint32_t route_index, bool with_key) {
    http::Request req;
    req.path = "/agg";
    if (with_key) {
      req.headers[0] = http::Header{"X-API-Key", "k-alice-0001"};
      req.header_count = 1;
    }
    route::Match m;
    m.route = nullptr;
    m.route_index = route_index;
    http::HeaderEdits edits;
    RequestContext ctx{req, m, "127.0.0.1", 1'000'000'000, edits};
    const Verdict v = f.on_request(ctx);
    return v == Verdict::kRespond ? ctx.reply.status : 200;
  };
  EXPECT_EQ(decide(*auth, 2, false), 200);  // aggregate 0: the global mode (none)
  EXPECT_EQ(decide(*auth, 3, false), 401);  // aggregate 1: its own mode
  EXPECT_EQ(decide(*auth, 3, true), 200);
  EXPECT_EQ(decide(*limit, 3, true), 200);
  EXPECT_EQ(decide(*limit, 3, true), 429);
  EXPECT_EQ(decide(*limit, 2, true), 200);
  EXPECT_EQ(decide(*limit, 2, true), 200);

  cfg.aggregates[0].scopes = {"x"};  // scopes without jwt
  EXPECT_FALSE(build(cfg, out, error));
  EXPECT_NE(error.find("aggregates[0]"), std::string::npos) << error;
}

TEST(BuiltinFilters, ErrorsNameTheSource) {
  struct Case {
    void (*edit)(config::Config&);
    const char* expect;
  };
  const std::string missing = testing::TempDir() + "ringway_no_such_file";
  static std::string missing_s;
  missing_s = missing;
  const Case cases[] = {
      {[](config::Config& c) { c.rate_limits = {"10/x"}; }, "--rate-limit"},
      {[](config::Config& c) { c.rate_limits = {"10/s,key=jwt-sub"}; }, "jwt-sub"},
      {[](config::Config& c) { c.routes[1].rate_limits = {"fast"}; }, "routes[1] ('/b/').rate_limits"},
      {[](config::Config& c) { c.routes[0].rate_limits = {"1/s,route=/x"}; }, "route= is implied"},
      {[](config::Config& c) { c.rate_limits.assign(17, "1/s"); }, "at most 16"},
      {[](config::Config& c) { c.auth = "jwt"; }, "--jwt-jwks or --jwt-key"},
      {[](config::Config& c) { c.routes[1].auth = "api-key"; }, "--api-key"},
      {[](config::Config& c) { c.auth = "sometimes"; }, "--auth"},
      {[](config::Config& c) { c.routes[0].scopes = {"x"}; }, "routes[0] ('/a/')"},
      {[](config::Config& c) { c.api_keys = {"bad name=key-value-1"}; }, "--api-key"},
      {[](config::Config& c) { c.api_keys_file = missing_s; }, "--api-keys-file"},
      {[](config::Config& c) { c.jwt_keys = {"k=pem:" + missing_s}; }, "ringway_no_such_file"},
      {[](config::Config& c) { c.jwt_keys = {"k=rsa:/x"}; }, "--jwt-key"},
      {[](config::Config& c) { c.jwt_issuer = "iss"; }, "--jwt-issuer"},
  };
  for (const Case& tc : cases) {
    config::Config cfg = two_routes();
    tc.edit(cfg);
    std::vector<std::unique_ptr<FilterFactory>> out;
    std::string error;
    EXPECT_FALSE(build(cfg, out, error)) << tc.expect;
    EXPECT_NE(error.find(tc.expect), std::string::npos) << tc.expect << " -> " << error;
    EXPECT_EQ(error.find("key-value-1"), std::string::npos) << error;
  }
}

// A cluster-scoped limit, from a flag or a route, builds the rate-limit filter (the engine gives
// it the worker's Redis link); a spec that is wrong in another way is reported.
TEST(BuiltinFilters, ClusterScopeBuildsTheRateLimitFilter) {
  for (int where = 0; where < 2; ++where) {
    config::Config cfg = two_routes();
    cfg.has_redis = true;
    cfg.redis_unix_path = "/run/redis/redis.sock";
    cfg.redis_failure = "local:3";
    cfg.redis_password = "pw";
    cfg.redis_database = 2;
    if (where == 0) {
      cfg.rate_limits = {"10/s", "100/s,burst=20,key=ip,scope=cluster"};
    } else {
      cfg.routes[1].rate_limits = {"5/s,scope=cluster"};
    }
    std::vector<std::unique_ptr<FilterFactory>> out;
    std::string error;
    EXPECT_TRUE(build(cfg, out, error)) << error;
    ASSERT_FALSE(out.empty());
    EXPECT_NE(dynamic_cast<rate_limit::RateLimitFilterFactory*>(out.back().get()), nullptr);
  }
  config::Config cfg = two_routes();
  cfg.has_redis = true;
  cfg.rate_limits = {"10/s,scope=cluster,scope=local"};
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  EXPECT_FALSE(build(cfg, out, error));
  EXPECT_NE(error.find("scope given twice"), std::string::npos) << error;
  cfg.has_redis = false;
  cfg.rate_limits = {"10/s,scope=local"};
  EXPECT_TRUE(build(cfg, out, error)) << error;
}

// The Redis settings and the cluster specs need each other; each mistake is named.
TEST(BuiltinFilters, ClusterSettingsAreChecked) {
  struct Case {
    void (*edit)(config::Config&);
    const char* expect;
  };
  const Case cases[] = {
      {[](config::Config& c) { c.rate_limits = {"10/s,scope=cluster"}; }, "scope=cluster needs --redis"},
      {[](config::Config& c) { c.routes[0].rate_limits = {"10/s,scope=cluster"}; }, "scope=cluster needs --redis"},
      {[](config::Config& c) { c.has_redis = true; }, "--redis: no rate limit has scope=cluster"},
      {[](config::Config& c) { c.has_redis = true; c.rate_limits = {"10/s"}; }, "--redis: no rate limit has scope=cluster"},
      {[](config::Config& c) { c.redis_password = "pw"; }, "need --redis"},
      {[](config::Config& c) { c.redis_database = 1; }, "need --redis"},
      {[](config::Config& c) {
         c.has_redis = true;
         c.rate_limits = {"10/s,scope=cluster"};
         c.redis_failure = "open";
       },
       "--redis-failure: expected deny, allow, local or local:N"},
      {[](config::Config& c) {
         c.has_redis = true;
         c.rate_limits = {"1/h,burst=10000,scope=cluster"};
       },
       "104 days"},
  };
  for (const Case& tc : cases) {
    config::Config cfg = two_routes();
    tc.edit(cfg);
    std::vector<std::unique_ptr<FilterFactory>> out;
    std::string error;
    EXPECT_FALSE(build(cfg, out, error)) << tc.expect;
    EXPECT_NE(error.find(tc.expect), std::string::npos) << tc.expect << " -> " << error;
  }
  // A local spec may be as long as the local limiter allows (104 days is a cluster bound).
  config::Config cfg = two_routes();
  cfg.rate_limits = {"1/h,burst=10000"};
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  EXPECT_TRUE(build(cfg, out, error)) << error;
}

TEST(BuiltinFilters, KeyFilesAreRead) {
  const std::string keys = write_temp("# consumers\nalice=key-0001\nbob=key-0002\n");
  const std::string secret = write_temp("0123456789abcdef0123456789abcdef\n");
  config::Config cfg = two_routes();
  cfg.api_keys_file = keys;
  cfg.jwt_keys = {"k1=secret:" + secret};
  cfg.jwt_claim_headers = {"sub=X-User-Id"};
  cfg.auth = "any";
  cfg.routes[0].auth = "jwt";
  cfg.routes[0].scopes = {"orders:read"};
  cfg.rate_limits = {"5/s,key=jwt-sub"};
  std::vector<std::unique_ptr<FilterFactory>> out;
  std::string error;
  EXPECT_TRUE(build(cfg, out, error)) << error;
  EXPECT_EQ(out.size(), 2u);
  unlink(keys.c_str());
  unlink(secret.c_str());
}

}  // namespace
}  // namespace ringway::filter
