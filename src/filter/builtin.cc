// Turns the text the config library kept (specs, NAME=KEY, KID=pem:FILE, mode names) into filter
// factories. This is where files are read and specs parsed, so both `ringway -t` and server
// start-up report a bad spec or an unreadable key file with the flag that named it.
#include "ringway/filter/builtin.h"

#include <algorithm>
#include <utility>

#include "filter/api_key/api_key.h"
#include "filter/client_cert/client_cert.h"
#include "filter/jwt/jwt.h"
#include "filter/rate_limit/cluster_lease.h"
#include "filter/rate_limit/rate_limit.h"
#include "ringway/core/ascii.h"

namespace ringway::filter {
namespace {

// Filters know routes by index: the routes first, then the aggregate endpoints (the engine
// matches an aggregate request as route index routes.size() + its index).
size_t access_count(const config::Config& cfg) { return cfg.routes.size() + cfg.aggregates.size(); }

const config::Access& access_of(const config::Config& cfg, size_t i) {
  if (i < cfg.routes.size()) return cfg.routes[i];
  return cfg.aggregates[i - cfg.routes.size()];
}

std::string route_name(const config::Config& cfg, size_t i) {
  if (i < cfg.routes.size()) return "routes[" + std::to_string(i) + "] ('" + cfg.routes[i].prefix + "')";
  return "aggregates[" + std::to_string(i - cfg.routes.size()) + "]";
}

bool build_api_keys(const config::Config& cfg, std::shared_ptr<const api_key::KeyStore>& out,
                    std::string& error) {
  if (cfg.api_keys.empty() && cfg.api_keys_file.empty()) return true;
  api_key::ApiKeyConfig ak;
  for (const std::string& text : cfg.api_keys) {
    api_key::Entry e;
    std::string why;
    if (!api_key::parse_entry(text, e, why)) {
      error = "--api-key: " + why;  // never the key itself
      return false;
    }
    ak.keys.push_back(std::move(e));
  }
  if (!cfg.api_keys_file.empty()) {
    std::string why;
    if (!api_key::load_keys_file(cfg.api_keys_file, ak.keys, why)) {
      error = "--api-keys-file: " + why;
      return false;
    }
  }
  ak.header = cfg.api_key_header;
  ak.query_param = cfg.api_key_query;
  std::string why;
  out = api_key::KeyStore::build(ak, why);
  // The clear-text keys in ak go away with it; the store keeps only digests.
  for (api_key::Entry& e : ak.keys) std::fill(e.key.begin(), e.key.end(), '\0');
  if (!out) {
    error = "API keys: " + why;
    return false;
  }
  return true;
}

bool build_jwt(const config::Config& cfg, std::shared_ptr<const jwt::JwtState>& out,
               std::string& error) {
  if (cfg.jwt_jwks.empty() && cfg.jwt_keys.empty()) {
    // Settings that only make sense with keys are a mistake on their own, not a no-op.
    if (!cfg.jwt_issuer.empty() || !cfg.jwt_audiences.empty() || !cfg.jwt_claim_headers.empty()) {
      error = "--jwt-issuer/--jwt-audience/--jwt-claim-header need --jwt-jwks or --jwt-key";
      return false;
    }
    return true;
  }
  jwt::JwtConfig jc;
  jc.jwks_file = cfg.jwt_jwks;
  jc.leeway_s = cfg.jwt_leeway_s;
  jc.issuer = cfg.jwt_issuer;
  jc.audiences = cfg.jwt_audiences;
  for (const std::string& text : cfg.jwt_keys) {
    jwt::KeySource src;
    std::string why;
    if (!jwt::parse_key_source(text, src, why)) {
      error = "--jwt-key '" + text + "': " + why;
      return false;
    }
    jc.keys.push_back(std::move(src));
  }
  for (const std::string& text : cfg.jwt_claim_headers) {
    jwt::ClaimHeader ch;
    std::string why;
    if (!jwt::parse_claim_header(text, ch, why)) {
      error = "--jwt-claim-header '" + text + "': " + why;
      return false;
    }
    jc.claim_headers.push_back(std::move(ch));
  }
  std::string why;
  out = jwt::load_jwt_state(jc, why);
  if (!out) {
    error = "JWT keys: " + why;
    return false;
  }
  return true;
}

bool mode_of(std::string_view name, jwt::AuthMode& out, const std::string& where,
             std::string& error) {
  if (jwt::auth_mode_from_name(name, out)) return true;
  error = where + ": unknown auth mode '" + std::string(name) + "'";
  return false;
}

bool build_auth(const config::Config& cfg, std::vector<std::unique_ptr<FilterFactory>>& out,
                std::string& error) {
  std::shared_ptr<const api_key::KeyStore> keys;
  std::shared_ptr<const jwt::JwtState> jwt_state;
  if (!build_api_keys(cfg, keys, error) || !build_jwt(cfg, jwt_state, error)) return false;

  jwt::RouteAuth default_auth;
  if (!mode_of(cfg.auth, default_auth.mode, "--auth", error)) return false;
  if (default_auth.mode == jwt::AuthMode::kMtls && cfg.tls_client_ca.empty()) {
    error = "--auth mtls needs --tls-client-ca and --tls-client-auth";
    return false;
  }
  bool any_auth = default_auth.mode != jwt::AuthMode::kNone;
  std::vector<jwt::RouteAuth> routes(access_count(cfg));
  for (size_t i = 0; i < routes.size(); ++i) {
    const config::Access& r = access_of(cfg, i);
    jwt::RouteAuth& ra = routes[i];
    ra.mode = default_auth.mode;
    if (!r.auth.empty() && !mode_of(r.auth, ra.mode, route_name(cfg, i) + ".auth", error)) return false;
    ra.scopes = r.scopes;
    ra.subjects = r.client_subjects;
    if (!ra.subjects.empty() && ra.mode != jwt::AuthMode::kMtls) {
      error = route_name(cfg, i) + ": \"client_subjects\" need \"auth\": \"mtls\"";
      return false;
    }
    if (ra.mode == jwt::AuthMode::kMtls && cfg.tls_client_ca.empty()) {
      error = route_name(cfg, i) + ": auth mtls needs --tls-client-ca and --tls-client-auth";
      return false;
    }
    for (const config::NameValue& c : r.claims) ra.claims.push_back(jwt::RequiredClaim{c.name, c.value});
    if ((!ra.scopes.empty() || !ra.claims.empty()) && ra.mode != jwt::AuthMode::kJwt) {
      error = route_name(cfg, i) + ": \"scopes\"/\"claims\" need \"auth\": \"jwt\"";
      return false;
    }
    any_auth |= ra.mode != jwt::AuthMode::kNone;
  }
  // With credentials configured the filter runs even where no route asks for auth: it removes
  // client-supplied identity headers (X-Consumer, claim headers) so an upstream can trust them.
  if (!any_auth && !keys && !jwt_state) return true;
  auto factory = std::make_unique<jwt::AuthFilterFactory>(std::move(jwt_state), std::move(keys),
                                                          std::move(routes), default_auth);
  std::string why;
  if (!factory->validate(why)) {
    error = "auth: " + why;
    return false;
  }
  out.push_back(std::move(factory));
  return true;
}

bool parse_spec(const std::string& text, const std::string& where,
                std::vector<rate_limit::RateLimitSpec>& specs, std::string& error) {
  rate_limit::RateLimitSpec spec;
  std::string why;
  if (!rate_limit::parse_rate_limit_spec(text, spec, why)) {
    error = where + ": " + why;
    return false;
  }
  specs.push_back(std::move(spec));
  return true;
}

// The Redis settings against the specs: each only makes sense with the other.
bool check_cluster_settings(const config::Config& cfg, const std::vector<rate_limit::RateLimitSpec>& specs,
                            std::string& error) {
  const bool any_cluster = std::any_of(specs.begin(), specs.end(),
                                       [](const rate_limit::RateLimitSpec& s) { return s.cluster; });
  if (!cfg.has_redis && (!cfg.redis_password.empty() || cfg.redis_database != 0)) {
    error = "redis.password/redis.database need --redis (\"redis\": {\"address\"})";
    return false;
  }
  if (any_cluster && !cfg.has_redis) {
    error = "--rate-limit: scope=cluster needs --redis HOST:PORT or --redis unix:PATH";
    return false;
  }
  if (cfg.has_redis && !any_cluster) {
    error = "--redis: no rate limit has scope=cluster";
    return false;
  }
  rate_limit::FailureConfig failure;
  std::string why;
  if (!rate_limit::parse_failure_policy(cfg.redis_failure, failure, why)) {
    error = "--redis-failure: " + why;
    return false;
  }
  for (const rate_limit::RateLimitSpec& s : specs) {
    rate_limit::BucketParams p;
    if (s.cluster && !rate_limit::cluster_params(s, p, why)) {
      error = "--rate-limit: " + why;
      return false;
    }
  }
  return true;
}

bool build_rate_limits(const config::Config& cfg, std::vector<std::unique_ptr<FilterFactory>>& out,
                       std::string& error) {
  std::vector<rate_limit::RateLimitSpec> specs;
  for (const std::string& text : cfg.rate_limits) {
    if (!parse_spec(text, "--rate-limit", specs, error)) return false;
  }
  for (size_t i = 0; i < access_count(cfg); ++i) {
    for (const std::string& text : access_of(cfg, i).rate_limits) {
      if (!parse_spec(text, route_name(cfg, i) + ".rate_limits", specs, error)) return false;
      if (!specs.back().route.empty()) {
        error = route_name(cfg, i) + ".rate_limits: route= is implied by the route";
        return false;
      }
      specs.back().route_index = static_cast<uint32_t>(i);
    }
  }
  if (!check_cluster_settings(cfg, specs, error)) return false;
  if (specs.empty()) return true;
  if (specs.size() > rate_limit::RateLimitFilterFactory::kMaxSpecs) {
    error = "--rate-limit: at most " + std::to_string(rate_limit::RateLimitFilterFactory::kMaxSpecs) +
            " specs in all (flags and routes), got " + std::to_string(specs.size());
    return false;
  }
  // key=jwt-sub counts by the subject the auth filter forwards in X-User-Id; without that claim
  // header every request would share the anonymous bucket.
  for (const rate_limit::RateLimitSpec& s : specs) {
    if (s.key != rate_limit::KeySource::kJwtSub) continue;
    const bool forwarded = std::any_of(cfg.jwt_claim_headers.begin(), cfg.jwt_claim_headers.end(),
                                       [](const std::string& t) {
                                         return t.size() == 13 && t.compare(0, 4, "sub=") == 0 &&
                                                core::iequals(std::string_view(t).substr(4), "X-User-Id");
                                       });
    if (!forwarded) {
      error = "--rate-limit: key=jwt-sub needs --jwt-claim-header sub=X-User-Id";
      return false;
    }
  }
  for (const rate_limit::RateLimitSpec& s : specs) {
    if (s.key == rate_limit::KeySource::kClientCert && cfg.tls_client_ca.empty()) {
      error = "--rate-limit: key=client-cert needs --tls-client-ca and --tls-client-auth";
      return false;
    }
  }
  rate_limit::RateLimitOptions opts;
  opts.max_keys = cfg.rate_limit_keys;
  opts.max_local_keys = std::min(opts.max_local_keys, cfg.rate_limit_keys);
  opts.style = cfg.rate_limit_legacy_headers ? rate_limit::HeaderStyle::kLegacy
                                             : rate_limit::HeaderStyle::kDraft;
  opts.headers_on_allowed = cfg.rate_limit_headers;
  std::string why;  // checked by check_cluster_settings()
  (void)rate_limit::parse_failure_policy(cfg.redis_failure, opts.failure, why);
  out.push_back(std::make_unique<rate_limit::RateLimitFilterFactory>(std::move(specs), opts));
  return true;
}

// With client certificates asked for on any listener, the verified subject goes to the upstream in
// one header; a client's own copy is removed on every request, TLS or not, verified or not.
void build_client_cert(const config::Config& cfg, std::vector<std::unique_ptr<FilterFactory>>& out) {
  if (cfg.tls_client_ca.empty() || cfg.tls_client_subject_header.empty()) return;
  out.push_back(std::make_unique<client_cert::ClientCertFilterFactory>(cfg.tls_client_subject_header));
}

}  // namespace

bool build_builtin_filters(const config::Config& cfg,
                           std::vector<std::unique_ptr<FilterFactory>>& out, std::string& error) {
  // Auth first: a rate limit keyed by api-key or jwt-sub reads the identity auth established,
  // and an unauthenticated request should not spend a consumer's quota.
  build_client_cert(cfg, out);
  return build_auth(cfg, out, error) && build_rate_limits(cfg, out, error);
}

}  // namespace ringway::filter
