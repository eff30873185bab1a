// JWT verification throughput per algorithm on one core (one Verifier, as one worker has), with
// the verified-token cache off (every signature checked) and, for asymmetric algorithms, on (the
// same token again: what a client reusing its token costs), plus the measurements behind two
// design choices: simdjson on-demand vs DOM for the claim set, and a reused EVP_MD_CTX vs one per
// verification.
#include <benchmark/benchmark.h>

#include <openssl/evp.h>
#include <simdjson.h>

#include <string>

#include "../../tests/unit/filter/jwt/token_minter.h"
#include "filter/jwt/jwt.h"

namespace rj = ringway::filter::jwt;

namespace {

constexpr int64_t kNow = 1'700'000'000;

const std::string& payload() {
  static const std::string p =
      "{\"iss\":\"https://issuer.example\",\"sub\":\"user-1234567\",\"aud\":[\"api\",\"web\"],\"iat\":1699999000,"
      "\"exp\":1700003600,\"scope\":\"orders:read orders:write profile\",\"tenant\":\"acme\",\"jti\":\"b4c1f0\"}";
  return p;
}

struct Fixture {
  EVP_PKEY* priv = nullptr;
  std::string secret;
  std::string token;
  std::shared_ptr<const rj::JwtState> state;
};

Fixture make(rj::Alg a, bool cache = false) {
  Fixture f;
  f.priv = rj::testing::generate_key(a);
  rj::KeySet ks;
  std::string err;
  if (rj::testing::is_hs(a)) {
    f.secret = std::string(64, 'k');
    ks.add_secret("k1", f.secret, a, err);
  } else {
    ks.add_pem("k1", rj::testing::public_pem(f.priv), &a, err);
  }
  rj::JwtConfig cfg;
  cfg.issuer = "https://issuer.example";
  cfg.audiences = {"api"};
  cfg.claim_headers = {{"sub", "X-User-Id"}};
  cfg.cache_verified = cache;
  f.state = rj::make_jwt_state(cfg, std::move(ks), err);
  f.token = rj::testing::mint(a, f.priv, f.secret, rj::testing::header_for(a, "k1"), payload());
  return f;
}

void BM_Verify(benchmark::State& st, rj::Alg a, bool cache) {
  Fixture f = make(a, cache);
  rj::Verifier v(f.state);
  rj::RouteAuth route;
  route.mode = rj::AuthMode::kJwt;
  route.scopes = {"orders:read"};
  for (auto _ : st) {
    rj::Status s = v.verify(f.token, kNow, &route);
    if (s != rj::Status::kOk) st.SkipWithError("verify failed");
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(st.iterations());
  EVP_PKEY_free(f.priv);
}

#define RW_ALG(name) BENCHMARK_CAPTURE(BM_Verify, name, rj::Alg::k##name, false)
RW_ALG(HS256); RW_ALG(HS384); RW_ALG(HS512);
RW_ALG(RS256); RW_ALG(RS384); RW_ALG(RS512);
RW_ALG(PS256); RW_ALG(PS384); RW_ALG(PS512);
RW_ALG(ES256); RW_ALG(ES384); RW_ALG(EdDSA);
#define RW_CACHED(name) BENCHMARK_CAPTURE(BM_Verify, name##_cached, rj::Alg::k##name, true)
RW_CACHED(RS256); RW_CACHED(ES256); RW_CACHED(EdDSA);

// Claims only (what a cache hit still does: exp/nbf and route checks).
void BM_ClaimsOnly(benchmark::State& st) {
  Fixture f = make(rj::Alg::kHS256);
  rj::Verifier v(f.state);
  if (v.verify_token(f.token) != rj::Status::kOk) st.SkipWithError("verify failed");
  for (auto _ : st) benchmark::DoNotOptimize(v.check_claims(kNow, nullptr));
}
BENCHMARK(BM_ClaimsOnly);


// simdjson: on-demand (what the verifier uses) vs DOM on the same claim set.
void BM_ClaimsDom(benchmark::State& st) {
  simdjson::dom::parser p;
  simdjson::padded_string text(payload());
  for (auto _ : st) {
    simdjson::dom::element doc;
    if (p.parse(text).get(doc)) st.SkipWithError("parse");
    double exp = 0, iat = 0;
    std::string_view iss, sub, scope;
    if (doc["exp"].get(exp)) st.SkipWithError("get");
    if (doc["iat"].get(iat)) st.SkipWithError("get");
    if (doc["iss"].get(iss)) st.SkipWithError("get");
    if (doc["sub"].get(sub)) st.SkipWithError("get");
    if (doc["scope"].get(scope)) st.SkipWithError("get");
    simdjson::dom::array aud;
    if (doc["aud"].get(aud)) st.SkipWithError("get");
    for (auto a : aud) benchmark::DoNotOptimize(a);
    benchmark::DoNotOptimize(exp + iat + double(iss.size() + sub.size() + scope.size()));
  }
}
BENCHMARK(BM_ClaimsDom);

// EVP_MD_CTX reuse: one context reset per verification (as the Verifier does) vs new/free.
void BM_Es256CtxReuse(benchmark::State& st, bool reuse) {
  Fixture f = make(rj::Alg::kES256);
  std::string input = f.token.substr(0, f.token.rfind('.'));
  std::string raw = rj::testing::sign_raw(rj::Alg::kES256, f.priv, "", input, /*der_ecdsa=*/true);
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  const rj::Key& key = f.state->keys.at(0);
  EVP_MD_CTX* shared = EVP_MD_CTX_new();
  for (auto _ : st) {
    EVP_MD_CTX* ctx = reuse ? shared : EVP_MD_CTX_new();
    int ok = EVP_DigestVerifyInit(ctx, nullptr, md, nullptr, key.pkey) == 1 &&
             EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(raw.data()), raw.size(),
                              reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    if (!ok) st.SkipWithError("verify");
    if (reuse) EVP_MD_CTX_reset(ctx); else EVP_MD_CTX_free(ctx);
  }
  EVP_MD_CTX_free(shared);
  EVP_MD_free(md);
  EVP_PKEY_free(f.priv);
}
BENCHMARK_CAPTURE(BM_Es256CtxReuse, reuse, true);
BENCHMARK_CAPTURE(BM_Es256CtxReuse, fresh, false);

}  // namespace

BENCHMARK_MAIN();
