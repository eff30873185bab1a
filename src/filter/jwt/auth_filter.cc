// The per-route auth filter: none | api-key | jwt | any | mtls, with RFC 6750 bearer semantics.
#include "filter/jwt/jwt.h"
#include "ringway/core/ascii.h"

namespace ringway::filter::jwt {
namespace {


// RFC 6750 3: no error attribute when the request carried no credentials (3.1), invalid_token
// for a bad token, insufficient_scope (403) for a good token lacking what the route needs.
constexpr std::string_view kChallengeMissing = "Bearer";
constexpr std::string_view kChallengeInvalid = "Bearer error=\"invalid_token\"";
constexpr std::string_view kChallengeScope = "Bearer error=\"insufficient_scope\"";
constexpr std::string_view kChallengeRequest = "Bearer error=\"invalid_request\"";

enum class Bearer : uint8_t { kAbsent, kPresent, kAmbiguous };

// RFC 6750 2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 9110
// 11.1). Another scheme counts as "no bearer token".
Bearer find_bearer(const http::Request& req, std::string_view& token) {
  unsigned count = 0;
  std::string_view value;
  for (uint16_t i = 0; i < req.header_count; ++i) {
    if (core::iequals(req.headers[i].name, "Authorization")) {
      value = req.headers[i].value;
      ++count;
    }
  }
  if (count == 0) return Bearer::kAbsent;
  if (count > 1) return Bearer::kAmbiguous;
  if (value.size() < 7 || !core::iequals(value.substr(0, 6), "Bearer") || value[6] != ' ') return Bearer::kAbsent;
  value.remove_prefix(7);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  token = value;
  return Bearer::kPresent;
}

void reply(RequestContext& ctx, uint16_t status, std::string_view detail, std::string_view challenge) {
  ctx.reply.status = status;
  ctx.reply.detail = detail;
  ctx.reply.headers[0] = http::Header{"WWW-Authenticate", challenge};
  ctx.reply.header_count = 1;
}

}  // namespace

class AuthFilter final : public Filter {
 public:
  explicit AuthFilter(const AuthFilterFactory& f) : f_(f) {
    if (f.jwt_) verifier_ = std::make_unique<Verifier>(f.jwt_);
    if (f.api_keys_) api_ = std::make_unique<api_key::Authenticator>(f.api_keys_);
  }

  Verdict on_request(RequestContext& ctx) override {
    const RouteAuth& ra = ctx.match.route_index < f_.routes_.size() ? f_.routes_[ctx.match.route_index] : f_.default_auth_;
    // Identity headers are the gateway's to set: a client-supplied copy is dropped on every
    // route, authenticated or not, so an upstream can trust them.
    if (!strip_identity_headers(ctx)) return fail_edits(ctx);
    switch (ra.mode) {
      case AuthMode::kNone:
        return Verdict::kContinue;
      case AuthMode::kJwt:
        return run_jwt(ctx, ra, /*any=*/false);
      case AuthMode::kApiKey:
        return run_api_key(ctx);
      case AuthMode::kMtls:
        return run_mtls(ctx, ra);
      case AuthMode::kAny: {
        std::string_view token;
        if (find_bearer(ctx.request, token) != Bearer::kAbsent) return run_jwt(ctx, ra, true);
        return run_api_key(ctx, /*any=*/true);
      }
    }
    return Verdict::kRespond;
  }

 private:
  bool strip_identity_headers(RequestContext& ctx) {
    bool ok = true;
    if (f_.jwt_) {
      for (const ClaimHeader& ch : f_.jwt_->config.claim_headers) ok &= ctx.edits.push_remove(ch.header);
    }
    if (f_.api_keys_ && !f_.api_keys_->consumer_header().empty()) {
      ok &= ctx.edits.push_remove(f_.api_keys_->consumer_header());
    }
    return ok;
  }

  static Verdict fail_edits(RequestContext& ctx) {
    ctx.reply.status = 500;
    ctx.reply.detail = "too many header edits";
    ctx.reply.header_count = 0;
    return Verdict::kRespond;
  }

  Verdict run_jwt(RequestContext& ctx, const RouteAuth& ra, bool any) {
    std::string_view token;
    Bearer b = find_bearer(ctx.request, token);
    if (b == Bearer::kAmbiguous) {
      reply(ctx, 400, "more than one Authorization field", kChallengeRequest);
      return Verdict::kRespond;
    }
    if (b == Bearer::kAbsent || verifier_ == nullptr) {
      reply(ctx, 401, "missing bearer token", kChallengeMissing);
      if (any) add_api_key_challenge(ctx);
      return Verdict::kRespond;
    }
    Status s = verifier_->verify(token, f_.clock_(), &ra);
    if (s == Status::kInsufficientScope) {
      reply(ctx, 403, status_text(s), kChallengeScope);
      return Verdict::kRespond;
    }
    if (s != Status::kOk) {
      reply(ctx, 401, status_text(s), kChallengeInvalid);
      return Verdict::kRespond;
    }
    const auto& headers = f_.jwt_->config.claim_headers;
    for (size_t i = 0; i < headers.size() && i < kMaxClaimHeaders; ++i) {
      bool present = false;
      std::string_view v = verifier_->claim_value(i, &present);
      if (!present) continue;
      // The verifier's buffers are reused by the next request; the head is written later.
      std::string_view kept = ctx.keep(v);
      if (kept.size() != v.size() || !ctx.edits.push_add(headers[i].header, kept)) return fail_edits(ctx);
    }
    return Verdict::kContinue;
  }

  // The identity is the certificate the handshake verified (RFC 8446 4.4.2.4); nothing in the
  // request can stand in for it. No WWW-Authenticate challenge: HTTP has no scheme for a TLS
  // client certificate, the client must reconnect with one.
  static Verdict run_mtls(RequestContext& ctx, const RouteAuth& ra) {
    if (ctx.peer_subject.empty()) {
      ctx.reply.status = 401;
      ctx.reply.detail = "a verified TLS client certificate is required";
      ctx.reply.header_count = 0;
      return Verdict::kRespond;
    }
    if (ra.subjects.empty()) return Verdict::kContinue;
    for (const std::string& s : ra.subjects) {
      if (s == ctx.peer_subject) return Verdict::kContinue;
    }
    ctx.reply.status = 403;
    ctx.reply.detail = "this client certificate is not allowed here";
    ctx.reply.header_count = 0;
    return Verdict::kRespond;
  }

  static void add_api_key_challenge(RequestContext& ctx) {
    if (ctx.reply.header_count < LocalReply::kMaxHeaders) {
      ctx.reply.headers[ctx.reply.header_count++] = http::Header{"WWW-Authenticate", "ApiKey"};
    }
  }

  Verdict run_api_key(RequestContext& ctx, bool any = false) {
    const std::string* consumer = nullptr;
    api_key::Outcome o = api_ ? api_->authenticate(ctx.request, &consumer) : api_key::Outcome::kMissing;
    if (o == api_key::Outcome::kOk) {
      return api_->apply(ctx, *consumer) ? Verdict::kContinue : fail_edits(ctx);
    }
    if (any && o == api_key::Outcome::kMissing) {
      reply(ctx, 401, "missing credentials", kChallengeMissing);
      add_api_key_challenge(ctx);
      return Verdict::kRespond;
    }
    api_key::Authenticator::reject(ctx, o);
    return Verdict::kRespond;
  }

  const AuthFilterFactory& f_;
  std::unique_ptr<Verifier> verifier_;
  std::unique_ptr<api_key::Authenticator> api_;
};

AuthFilterFactory::AuthFilterFactory(std::shared_ptr<const JwtState> jwt,
                                     std::shared_ptr<const api_key::KeyStore> api_keys,
                                     std::vector<RouteAuth> routes, RouteAuth default_auth, WallClock clock)
    : jwt_(std::move(jwt)), api_keys_(std::move(api_keys)), routes_(std::move(routes)),
      default_auth_(std::move(default_auth)), clock_(clock) {}

bool AuthFilterFactory::validate(std::string& error) const {
  auto check = [&](const RouteAuth& ra, const std::string& where) {
    bool need_jwt = ra.mode == AuthMode::kJwt || ra.mode == AuthMode::kAny;
    bool need_key = ra.mode == AuthMode::kApiKey || ra.mode == AuthMode::kAny;
    if (need_jwt && !jwt_) { error = where + ": auth needs JWT keys (--jwt-jwks or --jwt-key)"; return false; }
    if (need_key && !api_keys_) { error = where + ": auth needs API keys (--api-key or --api-keys-file)"; return false; }
    if (ra.scopes.size() > kMaxRouteRequirements || ra.claims.size() > kMaxRouteRequirements) {
      error = where + ": at most 32 required scopes and 32 required claims";
      return false;
    }
    if ((!ra.scopes.empty() || !ra.claims.empty()) && ra.mode != AuthMode::kJwt) {
      error = where + ": required scopes/claims need auth mode jwt";
      return false;
    }
    if (!ra.subjects.empty() && ra.mode != AuthMode::kMtls) {
      error = where + ": client subjects need auth mode mtls";
      return false;
    }
    return true;
  };
  for (size_t i = 0; i < routes_.size(); ++i) {
    if (!check(routes_[i], "route #" + std::to_string(i))) return false;
  }
  return check(default_auth_, "default auth");
}

std::unique_ptr<Filter> AuthFilterFactory::create(unsigned, unsigned) const {
  return std::make_unique<AuthFilter>(*this);
}

}  // namespace ringway::filter::jwt
