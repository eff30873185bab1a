// libFuzzer target for the JWT token parser and claim checker.
// The first input byte picks what the rest is:
//   0 (and anything not listed): a whole token, as it would arrive after "Bearer ";
//   1: a claim set (payload JSON), signed here with the HS256 key so check_claims() sees it;
//   2: a JOSE header (JSON), signed here over a fixed payload so header parsing and key
//      selection run with a valid signature.
// Keys come from the RFC 7515 / RFC 8037 examples (public parts only) plus one HMAC secret.
#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "filter/jwt/base64url.h"
#include "filter/jwt/jwt.h"

namespace rj = ringway::filter::jwt;

namespace {

const std::string kSecret(32, 'f');

struct Env {
  std::shared_ptr<const rj::JwtState> state;
  std::unique_ptr<rj::Verifier> verifier;
  rj::RouteAuth route;
  Env() {
    rj::KeySet ks;
    std::string err;
    ks.add_jwks(R"({"keys":[
      {"kty":"EC","kid":"ec","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
      {"kty":"OKP","kid":"ed","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
      {"kty":"RSA","kid":"rsa","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}]})",
                err);
    ks.add_secret("hs", kSecret, rj::Alg::kHS256, err);
    rj::JwtConfig cfg;
    cfg.issuer = "iss";
    cfg.audiences = {"api"};
    cfg.claim_headers = {{"sub", "X-User-Id"}, {"tenant", "X-Tenant"}};
    state = rj::make_jwt_state(cfg, std::move(ks), err);
    if (!state) __builtin_trap();
    verifier = std::make_unique<rj::Verifier>(state);
    route.mode = rj::AuthMode::kJwt;
    route.scopes = {"read", "write"};
    route.claims = {{"tenant", "acme"}, {"admin", ""}};
  }
};

std::string hs256(const std::string& header, const std::string& payload) {
  std::string input = rj::base64url_encode(header) + "." + rj::base64url_encode(payload);
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t n = 0;
  EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, kSecret.data(), kSecret.size(),
            reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, sizeof mac, &n);
  return input + "." + rj::base64url_encode(std::string(reinterpret_cast<char*>(mac), n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  if (size == 0) return 0;
  std::string rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::string token;
  switch (data[0]) {
    case 1: token = hs256("{\"alg\":\"HS256\",\"kid\":\"hs\"}", rest); break;
    case 2: token = hs256(rest, "{\"sub\":\"x\",\"exp\":2000000000}"); break;
    default: token = rest; break;
  }
  rj::Status s = env.verifier->verify(token, 1'700'000'000, &env.route);
  if (s == rj::Status::kOk) {
    // Anything accepted must carry a key and forward only header-safe values.
    if (env.verifier->last_key() == nullptr) __builtin_trap();
    for (size_t i = 0; i < 2; ++i) {
      for (unsigned char c : env.verifier->claim_value(i)) {
        if (c < 0x20 || c == 0x7f) __builtin_trap();
      }
    }
  }
  // The decoder on its own, with a round-trip property on success.
  uint8_t out[4096];
  long n = rj::base64url_decode(rest, out, sizeof out);
  if (n >= 0 && rj::base64url_encode(std::string(reinterpret_cast<char*>(out), size_t(n))) != rest) __builtin_trap();
  return 0;
}
