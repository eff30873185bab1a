// JWT verifier: RFC test vectors, tokens minted here for every algorithm, and the attacks.
#include <gtest/gtest.h>

#include <string>

#include "filter/jwt/base64url.h"
#include "filter/jwt/jwt.h"
#include "token_minter.h"

namespace ringway::filter::jwt {
namespace {

using testing::generate_key;
using testing::header_for;
using testing::mint;
using testing::public_pem;

constexpr int64_t kNow = 1'700'000'000;

// --- base64url -------------------------------------------------------------------------------

long dec(std::string_view s, std::string& out) {
  out.assign(64, '\0');
  long n = base64url_decode(s, reinterpret_cast<uint8_t*>(out.data()), out.size());
  if (n >= 0) out.resize(size_t(n));
  return n;
}

TEST(Base64url, RoundTripsAndRejectsNonCanonicalForms) {
  std::string out;
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "\xff\xfe\x00?>"}) {
    ASSERT_GE(dec(base64url_encode(s), out), 0) << s;
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(dec("Zm9v", out), 3);
  EXPECT_LT(dec("Zm9=", out), 0);     // padding
  EXPECT_LT(dec("Zm8=", out), 0);
  EXPECT_LT(dec("Zm+v", out), 0);     // base64, not base64url
  EXPECT_LT(dec("Zm/v", out), 0);
  EXPECT_LT(dec("Zm9 v", out), 0);    // whitespace
  EXPECT_LT(dec("Z", out), 0);        // impossible length
  EXPECT_EQ(dec("QQ", out), 1);       // "A"
  EXPECT_LT(dec("QR", out), 0);       // same byte, non-zero trailing bits
  EXPECT_EQ(dec("QUI", out), 2);      // "AB"
  EXPECT_LT(dec("QUJ", out), 0);
}

// --- RFC vectors ------------------------------------------------------------------------------

constexpr std::string_view kJoePayload =
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
constexpr int64_t kJoeExp = 1300819380;

std::shared_ptr<const JwtState> state_from_jwks(const std::string& jwks, JwtConfig cfg = {}) {
  KeySet ks;
  std::string err;
  EXPECT_TRUE(ks.add_jwks(jwks, err)) << err;
  auto st = make_jwt_state(cfg, std::move(ks), err);
  EXPECT_TRUE(st) << err;
  return st;
}

std::vector<uint8_t> b64(std::string_view s) {
  std::vector<uint8_t> v(s.size());
  long n = base64url_decode(s, v.data(), v.size());
  EXPECT_GE(n, 0);
  v.resize(n < 0 ? 0 : size_t(n));
  return v;
}

TEST(JwtRfc, A1Hs256) {
  auto st = state_from_jwks(R"({"keys":[{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow"}]})");
  Verifier v(st);
  std::string input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." + std::string(kJoePayload);
  std::string token = input + ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
  EXPECT_TRUE(v.verify_signature(st->keys.at(0), input, b64("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")));
  EXPECT_FALSE(v.verify_signature(st->keys.at(0), input + "x", b64("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")));
  EXPECT_EQ(v.verify(token, kJoeExp - 100, nullptr), Status::kOk);
  EXPECT_EQ(v.verify(token, kJoeExp + 60, nullptr), Status::kExpired);  // leeway is 60 s
  EXPECT_EQ(v.verify(token, kJoeExp + 59, nullptr), Status::kOk);
  token[token.size() - 10] ^= 1;  // one signature character changed
  EXPECT_EQ(v.verify(token, kJoeExp - 100, nullptr), Status::kBadSignature);
}

TEST(JwtRfc, A2Rs256) {
  auto st = state_from_jwks(R"({"keys":[{"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}]})");
  ASSERT_EQ(st->keys.at(0).alg, Alg::kRS256);
  Verifier v(st);
  std::string sig = "cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw";
  std::string input = "eyJhbGciOiJSUzI1NiJ9." + std::string(kJoePayload);
  EXPECT_TRUE(v.verify_signature(st->keys.at(0), input, b64(sig)));
  EXPECT_EQ(v.verify(input + "." + sig, kJoeExp - 1, nullptr), Status::kOk);
  EXPECT_EQ(v.verify(input + "." + sig, kJoeExp + 3600, nullptr), Status::kExpired);
  sig[10] = sig[10] == 'A' ? 'B' : 'A';
  EXPECT_EQ(v.verify(input + "." + sig, kJoeExp - 1, nullptr), Status::kBadSignature);
}

TEST(JwtRfc, A3Es256WithPublicKeyOnly) {
  auto st = state_from_jwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]})");
  ASSERT_EQ(st->keys.at(0).alg, Alg::kES256);
  Verifier v(st);
  std::string sig = "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
  std::string input = "eyJhbGciOiJFUzI1NiJ9." + std::string(kJoePayload);
  EXPECT_TRUE(v.verify_signature(st->keys.at(0), input, b64(sig)));
  EXPECT_EQ(v.verify(input + "." + sig, kJoeExp - 1, nullptr), Status::kOk);
  std::vector<uint8_t> zero(64, 0);  // r = s = 0 (CVE-2022-21449 "psychic signatures")
  EXPECT_FALSE(v.verify_signature(st->keys.at(0), input, zero));
  EXPECT_EQ(v.verify(input + "." + base64url_encode(std::string(64, '\0')), kJoeExp - 1, nullptr), Status::kBadSignature);
}

TEST(JwtRfc, Rfc8037A4Ed25519) {
  auto st = state_from_jwks(R"({"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})");
  ASSERT_EQ(st->keys.at(0).alg, Alg::kEdDSA);
  Verifier v(st);
  std::string input = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc";
  std::string sig = "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
  EXPECT_TRUE(v.verify_signature(st->keys.at(0), input, b64(sig)));
  EXPECT_FALSE(v.verify_signature(st->keys.at(0), input + "X", b64(sig)));
  // The payload is "Example of Ed25519 signing", not a claim set: signature fine, claims not.
  EXPECT_EQ(v.verify_token(input + "." + sig), Status::kOk);
  EXPECT_EQ(v.check_claims(kNow, nullptr), Status::kMalformed);
}

// --- every algorithm, minted here --------------------------------------------------------------

struct Minted {
  Alg alg;
  EVP_PKEY* priv = nullptr;
  std::string secret;
  std::shared_ptr<const JwtState> state;
};

Minted make_minted(Alg a, JwtConfig cfg = {}) {
  Minted m;
  m.alg = a;
  m.priv = generate_key(a);
  KeySet ks;
  std::string err;
  if (testing::is_hs(a)) {
    m.secret = std::string(64, 'k') + std::string(alg_name(a));
    EXPECT_TRUE(ks.add_secret("k1", m.secret, a, err)) << err;
  } else {
    EXPECT_NE(m.priv, nullptr);
    EXPECT_TRUE(ks.add_pem("k1", public_pem(m.priv), &a, err)) << err;
  }
  m.state = make_jwt_state(cfg, std::move(ks), err);
  EXPECT_TRUE(m.state) << err;
  return m;
}

std::string claims(int64_t exp, const std::string& extra = "") {
  return "{\"sub\":\"alice\",\"exp\":" + std::to_string(exp) + (extra.empty() ? "" : "," + extra) + "}";
}

class EveryAlg : public ::testing::TestWithParam<Alg> {};

TEST_P(EveryAlg, VerifiesOwnTokensAndRejectsTampering) {
  JwtConfig cfg;
  cfg.claim_headers.push_back({"sub", "X-User-Id"});
  Minted m = make_minted(GetParam(), cfg);
  Verifier v(m.state);
  std::string tok = mint(m.alg, m.priv, m.secret, header_for(m.alg, "k1"), claims(kNow + 300));
  ASSERT_EQ(v.verify(tok, kNow, nullptr), Status::kOk) << alg_name(m.alg);
  bool present = false;
  EXPECT_EQ(v.claim_value(0, &present), "alice");
  EXPECT_TRUE(present);
  // Same header and signature, payload swapped for another subject.
  std::string forged = tok;
  size_t d1 = forged.find('.'), d2 = forged.rfind('.');
  forged.replace(d1 + 1, d2 - d1 - 1, base64url_encode(claims(kNow + 300).replace(8, 5, "mallo")));
  EXPECT_EQ(v.verify(forged, kNow, nullptr), Status::kBadSignature);
  // No kid with a single key is fine.
  std::string nokid = mint(m.alg, m.priv, m.secret, header_for(m.alg, ""), claims(kNow + 300));
  EXPECT_EQ(v.verify(nokid, kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.verify(tok, kNow + 400, nullptr), Status::kExpired);
  EVP_PKEY_free(m.priv);
}

INSTANTIATE_TEST_SUITE_P(Jwt, EveryAlg,
                         ::testing::Values(Alg::kHS256, Alg::kHS384, Alg::kHS512, Alg::kRS256, Alg::kRS384,
                                           Alg::kRS512, Alg::kPS256, Alg::kPS384, Alg::kPS512, Alg::kES256,
                                           Alg::kES384, Alg::kEdDSA),
                         [](const auto& info) { return std::string(alg_name(info.param)); });

// --- verified-token cache -------------------------------------------------------------------------

// Verifies one freshly minted token twice with a new Verifier; returns its cache hits.
uint64_t hits_after_verifying_twice(Alg alg, JwtConfig cfg) {
  Minted m = make_minted(alg, cfg);
  Verifier v(m.state);
  const std::string tok = mint(m.alg, m.priv, m.secret, header_for(m.alg, "k1"), claims(kNow + 300));
  EXPECT_EQ(v.verify(tok, kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.verify(tok, kNow, nullptr), Status::kOk);
  EVP_PKEY_free(m.priv);
  return v.cache_hits();
}

TEST(JwtCache, AsymmetricSignatureVerifiedOnceClaimsCheckedEveryTime) {
  JwtConfig cfg;
  cfg.claim_headers.push_back({"sub", "X-User-Id"});
  Minted m = make_minted(Alg::kES256, cfg);
  Verifier v(m.state);
  const std::string tok = mint(m.alg, m.priv, m.secret, header_for(m.alg, "k1"),
                               claims(kNow + 300, "\"scope\":\"read\""));
  ASSERT_EQ(v.verify(tok, kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.cache_hits(), 0u);
  ASSERT_EQ(v.verify(tok, kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.cache_hits(), 1u);
  EXPECT_EQ(v.claim_value(0), "alice");  // claims come from the cached payload
  // The claims are still checked on a hit: time and the route's requirements.
  EXPECT_EQ(v.verify(tok, kNow + 400, nullptr), Status::kExpired);
  RouteAuth admin;
  admin.mode = AuthMode::kJwt;
  admin.scopes = {"admin"};
  EXPECT_EQ(v.verify(tok, kNow, &admin), Status::kInsufficientScope);
  EXPECT_EQ(v.cache_hits(), 3u);
  // Only the exact bytes hit: the same token with its signature changed is verified and refused.
  std::string bad = tok;
  bad[bad.size() - 3] = bad[bad.size() - 3] == 'A' ? 'B' : 'A';
  EXPECT_EQ(v.verify(bad, kNow, nullptr), Status::kBadSignature);
  EXPECT_EQ(v.verify(bad, kNow, nullptr), Status::kBadSignature);  // refusals are not cached
  EXPECT_EQ(v.cache_hits(), 3u);
  // Another valid token is a miss, then a hit.
  const std::string other = mint(m.alg, m.priv, m.secret, header_for(m.alg, "k1"), claims(kNow + 600));
  ASSERT_EQ(v.verify(other, kNow, nullptr), Status::kOk);
  ASSERT_EQ(v.verify(other, kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.cache_hits(), 4u);
  EVP_PKEY_free(m.priv);

  // cache_verified off: every verification checks the signature.
  JwtConfig off;
  off.cache_verified = false;
  EXPECT_EQ(hits_after_verifying_twice(Alg::kES256, off), 0u);
  // HMAC tokens are cheap to verify and not cached.
  EXPECT_EQ(hits_after_verifying_twice(Alg::kHS256, {}), 0u);
  EXPECT_EQ(hits_after_verifying_twice(Alg::kRS256, {}), 1u);
  EXPECT_EQ(hits_after_verifying_twice(Alg::kEdDSA, {}), 1u);
}

// --- attacks ------------------------------------------------------------------------------------

class JwtAttack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    rsa_ = generate_key(Alg::kRS256);
    ec_ = generate_key(Alg::kES256);
  }
  static void TearDownTestSuite() {
    EVP_PKEY_free(rsa_);
    EVP_PKEY_free(ec_);
  }
  void SetUp() override {
    KeySet ks;
    std::string err;
    ASSERT_TRUE(ks.add_pem("rsa", public_pem(rsa_), nullptr, err)) << err;
    ASSERT_TRUE(ks.add_pem("ec", public_pem(ec_), nullptr, err)) << err;
    ASSERT_TRUE(ks.add_secret("hmac", secret_, Alg::kHS256, err)) << err;
    cfg_.issuer = "https://issuer.example";
    cfg_.audiences = {"api", "other"};
    cfg_.max_token_bytes = 4096;
    state_ = make_jwt_state(cfg_, std::move(ks), err);
    ASSERT_TRUE(state_) << err;
    v_ = std::make_unique<Verifier>(state_);
  }
  std::string good_claims(const std::string& extra = "") {
    return "{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"sub\":\"bob\",\"iat\":" + std::to_string(kNow - 10) +
           ",\"exp\":" + std::to_string(kNow + 600) + (extra.empty() ? "" : "," + extra) + "}";
  }
  std::string rs(const std::string& header, const std::string& payload) { return mint(Alg::kRS256, rsa_, "", header, payload); }
  std::string hs(const std::string& header, const std::string& payload) { return mint(Alg::kHS256, nullptr, secret_, header, payload); }
  Status check(const std::string& tok, const RouteAuth* r = nullptr) { return v_->verify(tok, kNow, r); }

  static EVP_PKEY* rsa_;
  static EVP_PKEY* ec_;
  std::string secret_ = std::string(40, 's');
  JwtConfig cfg_;
  std::shared_ptr<const JwtState> state_;
  std::unique_ptr<Verifier> v_;
};
EVP_PKEY* JwtAttack::rsa_ = nullptr;
EVP_PKEY* JwtAttack::ec_ = nullptr;

TEST_F(JwtAttack, Baseline) {
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "rsa"), good_claims())), Status::kOk);
  EXPECT_EQ(check(hs(header_for(Alg::kHS256, "hmac"), good_claims())), Status::kOk);
  EXPECT_EQ(check(mint(Alg::kES256, ec_, "", header_for(Alg::kES256, "ec"), good_claims())), Status::kOk);
}

TEST_F(JwtAttack, AlgNoneInAnyCasing) {
  for (std::string alg : {"none", "None", "NONE", "nOnE"}) {
    std::string input = base64url_encode("{\"alg\":\"" + alg + "\",\"kid\":\"rsa\"}") + "." + base64url_encode(good_claims());
    EXPECT_EQ(check(input + "."), Status::kMalformed) << alg;         // the unsecured form
    EXPECT_EQ(check(input + ".AAAA"), Status::kAlgNone) << alg;       // with some signature
  }
}

TEST_F(JwtAttack, Hs256WithRsaPublicKeyAsSecret) {
  std::string pem = public_pem(rsa_);
  std::string tok = mint(Alg::kHS256, nullptr, pem, header_for(Alg::kHS256, "rsa"), good_claims());
  EXPECT_EQ(check(tok), Status::kAlgMismatch);
}

TEST_F(JwtAttack, MismatchedAlg) {
  EXPECT_EQ(check(mint(Alg::kRS384, rsa_, "", header_for(Alg::kRS384, "rsa"), good_claims())), Status::kAlgMismatch);
  EXPECT_EQ(check(mint(Alg::kPS256, rsa_, "", header_for(Alg::kPS256, "rsa"), good_claims())), Status::kAlgMismatch);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "ec"), good_claims())), Status::kAlgMismatch);
  EXPECT_EQ(check(rs("{\"alg\":\"rs256\",\"kid\":\"rsa\"}", good_claims())), Status::kUnsupportedAlg);
  EXPECT_EQ(check(rs("{\"alg\":\"HS1\",\"kid\":\"rsa\"}", good_claims())), Status::kUnsupportedAlg);
}

TEST_F(JwtAttack, KidTricks) {
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "../../etc/passwd"), good_claims())), Status::kUnknownKid);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "nope"), good_claims())), Status::kUnknownKid);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, ""), good_claims())), Status::kMissingKid);  // 3 keys
  EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":7}", good_claims())), Status::kMalformed);
  EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"kid\":\"ec\"}", good_claims())), Status::kMalformed);
}

TEST_F(JwtAttack, EmbeddedKeysAndCrit) {
  for (std::string member : {"\"jwk\":{\"kty\":\"oct\",\"k\":\"AAAA\"}", "\"jku\":\"https://evil/jwks\"",
                             "\"x5u\":\"https://evil/cert\"", "\"x5c\":[\"MIIB\"]"}) {
    EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":\"rsa\"," + member + "}", good_claims())), Status::kEmbeddedKey) << member;
  }
  EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"crit\":[\"exp\"],\"exp\":1}", good_claims())), Status::kUnknownCrit);
  EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"b64\":false}", good_claims())), Status::kUnknownCrit);
}

TEST_F(JwtAttack, EcdsaSignatureForms) {
  std::string h = header_for(Alg::kES256, "ec");
  std::string input = base64url_encode(h) + "." + base64url_encode(good_claims());
  EXPECT_EQ(check(input + "." + base64url_encode(std::string(64, '\0'))), Status::kBadSignature);
  // A valid DER ECDSA signature over the same input is not a JWS signature (RFC 7518 3.4).
  EXPECT_EQ(check(mint(Alg::kES256, ec_, "", h, good_claims(), /*der_ecdsa=*/true)), Status::kBadSignature);
  // r || s with r = 0 and a real s.
  std::string raw = testing::sign_raw(Alg::kES256, ec_, "", input);
  std::string r0 = std::string(32, '\0') + raw.substr(32);
  EXPECT_EQ(check(input + "." + base64url_encode(r0)), Status::kBadSignature);
  EXPECT_EQ(check(input + "." + base64url_encode(raw)), Status::kOk);
  EXPECT_EQ(check(input + "." + base64url_encode(raw + "\x01")), Status::kBadSignature);
}

TEST_F(JwtAttack, TimeClaims) {
  std::string h = header_for(Alg::kRS256, "rsa");
  auto tok = [&](const std::string& body) { return rs(h, body); };
  EXPECT_EQ(check(tok("{\"exp\":" + std::to_string(kNow - 61) + "}")), Status::kExpired);
  EXPECT_EQ(check(tok("{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"exp\":" + std::to_string(kNow - 30) + "}")), Status::kOk);  // within leeway
  EXPECT_EQ(check(tok("{\"iss\":\"https://issuer.example\",\"aud\":\"api\"}")), Status::kMissingExp);
  EXPECT_EQ(check(tok(good_claims("\"nbf\":" + std::to_string(kNow + 120)))), Status::kNotYetValid);
  EXPECT_EQ(check(tok(good_claims("\"nbf\":" + std::to_string(kNow + 30)))), Status::kOk);
  EXPECT_EQ(check(tok("{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"iat\":" + std::to_string(kNow + 3600) +
                      ",\"exp\":" + std::to_string(kNow + 7200) + "}")), Status::kIssuedInFuture);
  EXPECT_EQ(check(tok("{\"exp\":\"tomorrow\"}")), Status::kBadClaim);
  EXPECT_EQ(check(tok("{\"exp\":" + std::to_string(kNow + 60) + ",\"exp\":" + std::to_string(kNow + 99999) + "}")), Status::kMalformed);
  EXPECT_EQ(check(tok("{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"exp\":1.6999e9}")), Status::kExpired);
  EXPECT_EQ(check(tok("{\"iss\":\"https://issuer.example\",\"aud\":\"api\",\"exp\":1.7000001e9}")), Status::kOk);
}

TEST_F(JwtAttack, IssuerAndAudience) {
  std::string h = header_for(Alg::kRS256, "rsa");
  std::string exp = ",\"exp\":" + std::to_string(kNow + 60);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://evil.example\",\"aud\":\"api\"" + exp + "}")), Status::kBadIssuer);
  EXPECT_EQ(check(rs(h, "{\"aud\":\"api\"" + exp + "}")), Status::kBadIssuer);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://issuer.example\",\"aud\":\"web\"" + exp + "}")), Status::kBadAudience);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://issuer.example\"" + exp + "}")), Status::kBadAudience);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://issuer.example\",\"aud\":[\"web\",\"other\"]" + exp + "}")), Status::kOk);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://issuer.example\",\"aud\":[\"web\"]" + exp + "}")), Status::kBadAudience);
  EXPECT_EQ(check(rs(h, "{\"iss\":\"https://issuer.example\",\"aud\":[\"api\",3]" + exp + "}")), Status::kBadClaim);
}

TEST_F(JwtAttack, StructureAndEncoding) {
  std::string tok = rs(header_for(Alg::kRS256, "rsa"), good_claims());
  size_t d1 = tok.find('.'), d2 = tok.rfind('.');
  EXPECT_EQ(check(tok.substr(0, d2)), Status::kMalformed);              // two segments
  EXPECT_EQ(check(tok + ".AAAA"), Status::kMalformed);                   // four segments
  EXPECT_EQ(check(tok + "."), Status::kMalformed);
  EXPECT_EQ(check("." + tok.substr(d1 + 1)), Status::kMalformed);        // empty header
  std::string pad = tok.substr(0, d1) + "=" + tok.substr(d1);
  EXPECT_EQ(check(pad), Status::kBadBase64);
  std::string plus = tok;
  plus[d2 + 5] = '+';
  EXPECT_EQ(check(plus), Status::kBadBase64);
  std::string big = rs(header_for(Alg::kRS256, "rsa"), good_claims("\"pad\":\"" + std::string(4000, 'x') + "\""));
  EXPECT_EQ(check(big), Status::kTooLarge);
  std::string deep = std::string(40, '[') + std::string(40, ']');
  EXPECT_EQ(check(rs("{\"alg\":\"RS256\",\"kid\":\"rsa\",\"x\":" + deep + "}", good_claims())), Status::kTooDeep);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "rsa"), good_claims("\"x\":" + deep))), Status::kTooDeep);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "rsa") + "{}", good_claims())), Status::kMalformed);  // trailing JSON
  EXPECT_EQ(check(rs("[\"RS256\"]", good_claims())), Status::kMalformed);
  EXPECT_EQ(check(rs(header_for(Alg::kRS256, "rsa"), good_claims() + " x")), Status::kMalformed);
}

TEST_F(JwtAttack, RouteScopesAndClaims) {
  std::string h = header_for(Alg::kRS256, "rsa");
  RouteAuth route;
  route.mode = AuthMode::kJwt;
  route.scopes = {"orders:read", "orders:write"};
  EXPECT_EQ(check(rs(h, good_claims("\"scope\":\"orders:read orders:write profile\"")), &route), Status::kOk);
  EXPECT_EQ(check(rs(h, good_claims("\"scope\":\"orders:read\"")), &route), Status::kInsufficientScope);
  EXPECT_EQ(check(rs(h, good_claims("\"scope\":\"orders:readorders:write\"")), &route), Status::kInsufficientScope);
  EXPECT_EQ(check(rs(h, good_claims("\"scp\":[\"orders:write\",\"orders:read\"]")), &route), Status::kOk);
  EXPECT_EQ(check(rs(h, good_claims()), &route), Status::kInsufficientScope);
  RouteAuth claims_route;
  claims_route.mode = AuthMode::kJwt;
  claims_route.claims = {{"tenant", "acme"}, {"admin", "true"}, {"groups", "ops"}, {"email_verified", ""}};
  EXPECT_EQ(check(rs(h, good_claims("\"tenant\":\"acme\",\"admin\":true,\"groups\":[\"dev\",\"ops\"],\"email_verified\":false")), &claims_route), Status::kOk);
  EXPECT_EQ(check(rs(h, good_claims("\"tenant\":\"acme2\",\"admin\":true,\"groups\":[\"ops\"],\"email_verified\":1")), &claims_route), Status::kInsufficientScope);
  EXPECT_EQ(check(rs(h, good_claims("\"tenant\":\"acme\",\"admin\":false,\"groups\":[\"ops\"],\"email_verified\":1")), &claims_route), Status::kInsufficientScope);
  EXPECT_EQ(check(rs(h, good_claims("\"tenant\":\"acme\",\"admin\":true,\"groups\":[\"ops\"]")), &claims_route), Status::kInsufficientScope);
  // An expired token is an invalid token, whatever its scopes.
  EXPECT_EQ(v_->verify(rs(h, good_claims("\"scope\":\"orders:read orders:write\"")), kNow + 3600, &route), Status::kExpired);
}

TEST(JwtClaimHeaders, ControlCharactersAreRefused) {
  JwtConfig cfg;
  cfg.claim_headers = {{"sub", "X-User-Id"}, {"n", "X-N"}};
  Minted m = make_minted(Alg::kHS256, cfg);
  Verifier v(m.state);
  auto tok = [&](const std::string& body) { return mint(Alg::kHS256, nullptr, m.secret, header_for(Alg::kHS256, ""), body); };
  std::string exp = "\"exp\":" + std::to_string(kNow + 60);
  EXPECT_EQ(v.verify(tok("{\"sub\":\"a\\r\\nX-Admin: 1\"," + exp + "}"), kNow, nullptr), Status::kBadClaim);
  ASSERT_EQ(v.verify(tok("{\"sub\":\"caf\\u00e9\",\"n\":42 ," + exp + "}"), kNow, nullptr), Status::kOk);
  EXPECT_EQ(v.claim_value(0), "caf\xc3\xa9");
  EXPECT_EQ(v.claim_value(1), "42");
  ASSERT_EQ(v.verify(tok("{" + exp + "}"), kNow, nullptr), Status::kOk);
  bool present = true;
  EXPECT_EQ(v.claim_value(0, &present), "");
  EXPECT_FALSE(present);
}

// --- key loading --------------------------------------------------------------------------------

TEST(JwtKeys, LoadingRules) {
  KeySet ks;
  std::string err;
  EXPECT_FALSE(ks.add_secret("short", "too-short", Alg::kHS256, err));
  EXPECT_NE(err.find("minimum"), std::string::npos);
  EXPECT_FALSE(ks.add_jwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA"}]})", err));
  // A point that is not on the curve (x, y of A.3 with y changed).
  EXPECT_FALSE(ks.add_jwks(R"({"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a1"}]})", err));
  EXPECT_FALSE(ks.add_jwks(R"({"keys":[{"kty":"RSA","alg":"HS256","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}]})", err));
  EXPECT_NE(err.find("HMAC"), std::string::npos) << err;
  EXPECT_TRUE(ks.add_jwks(R"({"keys":[{"kty":"oct","kid":"a","alg":"HS512","k":")" + base64url_encode(std::string(64, 'x')) + R"("},{"kty":"oct","use":"enc","k":"AAAA"}]})", err)) << err;
  EXPECT_EQ(ks.size(), 1u);
  EXPECT_EQ(ks.find("a")->alg, Alg::kHS512);
  EXPECT_FALSE(ks.add_secret("a", std::string(64, 'y'), Alg::kHS256, err));  // duplicate kid
  EVP_PKEY* ec = generate_key(Alg::kES384);
  EXPECT_TRUE(ks.add_pem("ec", public_pem(ec), nullptr, err)) << err;
  EXPECT_EQ(ks.find("ec")->alg, Alg::kES384);
  Alg wrong = Alg::kES256;
  EXPECT_FALSE(ks.add_pem("ec2", public_pem(ec), &wrong, err));
  EVP_PKEY_free(ec);

  KeySource src;
  ASSERT_TRUE(parse_key_source("main=pem/PS384:/etc/keys/main.pem", src, err)) << err;
  EXPECT_EQ(src.kid, "main");
  EXPECT_EQ(src.kind, KeySource::Kind::kPem);
  EXPECT_TRUE(src.has_alg);
  EXPECT_EQ(src.alg, Alg::kPS384);
  EXPECT_EQ(src.path, "/etc/keys/main.pem");
  ASSERT_TRUE(parse_key_source("s=secret:/run/s", src, err));
  EXPECT_EQ(src.kind, KeySource::Kind::kSecret);
  EXPECT_FALSE(parse_key_source("s=file:/x", src, err));
  EXPECT_FALSE(parse_key_source("s=pem/none:/x", src, err));
  ClaimHeader ch;
  EXPECT_TRUE(parse_claim_header("sub=X-User-Id", ch, err));
  EXPECT_FALSE(parse_claim_header("sub=X User", ch, err));
}

}  // namespace
}  // namespace ringway::filter::jwt
