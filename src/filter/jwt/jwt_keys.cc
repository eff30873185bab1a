// Key loading for the JWT filter: JWKS (RFC 7517), PEM public keys and HMAC secrets, all turned
// into EVP_PKEYs once at start-up (RFC 7518 6 for the JWK members).
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <simdjson.h>

#include <fstream>
#include <sstream>

#include "filter/jwt/base64url.h"
#include "filter/jwt/jwt.h"

namespace ringway::filter::jwt {
namespace {

constexpr std::string_view kAlgNames[] = {"HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                          "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};

bool is_hmac(Alg a) { return a <= Alg::kHS512; }
bool is_rsa(Alg a) { return a >= Alg::kRS256 && a <= Alg::kPS512; }
bool is_pss(Alg a) { return a >= Alg::kPS256 && a <= Alg::kPS512; }

size_t hmac_min_len(Alg a) { return a == Alg::kHS256 ? 32 : a == Alg::kHS384 ? 48 : 64; }

std::string decode_b64(std::string_view s, bool& ok) {
  std::string out(base64url_decoded_size(s.size()) == SIZE_MAX ? 0 : base64url_decoded_size(s.size()), '\0');
  long n = base64url_decode(s, reinterpret_cast<uint8_t*>(out.data()), out.size());
  ok = n >= 0 && !s.empty();
  if (ok) out.resize(static_cast<size_t>(n));
  return out;
}

struct PkeyCtxFree { void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); } };
struct BldFree { void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); } };
struct ParamFree { void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); } };
struct BnFree { void operator()(BIGNUM* b) const { BN_free(b); } };

EVP_PKEY* fromdata(const char* type, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return nullptr;
  }
  return pkey;
}

EVP_PKEY* rsa_from_ne(std::string_view n, std::string_view e) {
  std::unique_ptr<BIGNUM, BnFree> bn_n(BN_bin2bn(reinterpret_cast<const uint8_t*>(n.data()), int(n.size()), nullptr));
  std::unique_ptr<BIGNUM, BnFree> bn_e(BN_bin2bn(reinterpret_cast<const uint8_t*>(e.data()), int(e.size()), nullptr));
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  return params ? fromdata("RSA", params.get()) : nullptr;
}

EVP_PKEY* ec_from_xy(const char* group, std::string_view x, std::string_view y) {
  // Uncompressed SEC1 point: 0x04 || x || y.
  std::string pub(1, '\x04');
  pub.append(x).append(y);
  std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub.data(), pub.size())) {
    return nullptr;
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  EVP_PKEY* pkey = params ? fromdata("EC", params.get()) : nullptr;
  if (pkey == nullptr) return nullptr;
  // A point off the curve must never be used (invalid-curve attacks).
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> chk(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (!chk || EVP_PKEY_public_check(chk.get()) != 1) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  return pkey;
}

std::string ec_group(EVP_PKEY* pkey) {
  char name[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, name, sizeof name, &len) != 1) return {};
  return std::string(name, len);
}

// Does the key material fit the algorithm? (RFC 7518 3.1 table; sizes from 3.2, 3.3, 3.4.)
bool key_fits(const Key& k, std::string& why) {
  if (is_hmac(k.alg)) {
    if (k.pkey != nullptr) { why = "HMAC algorithm needs a secret key"; return false; }
    if (k.secret.size() < hmac_min_len(k.alg)) {
      why = "secret shorter than the " + std::to_string(hmac_min_len(k.alg)) + "-byte minimum for " + std::string(alg_name(k.alg));
      return false;
    }
    return true;
  }
  if (k.pkey == nullptr) { why = std::string(alg_name(k.alg)) + " needs a public key, not a secret"; return false; }
  if (is_rsa(k.alg)) {
    bool rsa = EVP_PKEY_is_a(k.pkey, "RSA") == 1, pss = EVP_PKEY_is_a(k.pkey, "RSA-PSS") == 1;
    if (!(rsa || (pss && is_pss(k.alg)))) { why = std::string(alg_name(k.alg)) + " needs an RSA key"; return false; }
    if (EVP_PKEY_get_bits(k.pkey) < 2048) { why = "RSA key shorter than 2048 bits"; return false; }
    return true;
  }
  if (k.alg == Alg::kES256 || k.alg == Alg::kES384) {
    const char* want = k.alg == Alg::kES256 ? "prime256v1" : "secp384r1";
    if (EVP_PKEY_is_a(k.pkey, "EC") != 1 || ec_group(k.pkey) != want) {
      why = std::string(alg_name(k.alg)) + " needs an EC key on " + (k.alg == Alg::kES256 ? "P-256" : "P-384");
      return false;
    }
    return true;
  }
  if (EVP_PKEY_is_a(k.pkey, "ED25519") != 1) { why = "EdDSA needs an Ed25519 key"; return false; }
  return true;
}

bool default_alg(EVP_PKEY* pkey, Alg& out) {
  if (EVP_PKEY_is_a(pkey, "RSA") == 1) { out = Alg::kRS256; return true; }
  if (EVP_PKEY_is_a(pkey, "RSA-PSS") == 1) { out = Alg::kPS256; return true; }
  if (EVP_PKEY_is_a(pkey, "ED25519") == 1) { out = Alg::kEdDSA; return true; }
  if (EVP_PKEY_is_a(pkey, "EC") == 1) {
    std::string g = ec_group(pkey);
    if (g == "prime256v1") { out = Alg::kES256; return true; }
    if (g == "secp384r1") { out = Alg::kES384; return true; }
  }
  return false;
}

bool read_file(const std::string& path, std::string& out, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) { error = path + ": cannot open"; return false; }
  std::stringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

bool valid_header_name(std::string_view n) {
  if (n.empty()) return false;
  for (unsigned char c : n) {  // RFC 9110 5.6.2 tchar
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              std::string_view("!#$%&'*+-.^_`|~").find(char(c)) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

}  // namespace

Key::~Key() {
  EVP_PKEY_free(pkey);
  OPENSSL_cleanse(secret.data(), secret.size());
}

std::string_view alg_name(Alg a) { return kAlgNames[static_cast<size_t>(a)]; }

bool alg_from_name(std::string_view name, Alg& out) {
  for (size_t i = 0; i < std::size(kAlgNames); ++i) {
    if (kAlgNames[i] == name) { out = static_cast<Alg>(i); return true; }
  }
  return false;
}

bool KeySet::add(std::unique_ptr<Key> k, std::string& error) {
  std::string why;
  if (!key_fits(*k, why)) {
    error = "key '" + k->kid + "': " + why;
    return false;
  }
  for (const auto& o : keys_) {
    if (o->kid == k->kid) { error = "duplicate key id '" + k->kid + "'"; return false; }
  }
  k->index = static_cast<uint32_t>(keys_.size());
  keys_.push_back(std::move(k));
  return true;
}

const Key* KeySet::find(std::string_view kid) const {
  for (const auto& k : keys_) {
    if (k->kid == kid) return k.get();
  }
  return nullptr;
}

bool KeySet::add_secret(std::string_view kid, std::string_view secret, Alg alg, std::string& error) {
  auto k = std::make_unique<Key>();
  k->kid = std::string(kid);
  k->alg = alg;
  k->secret = std::string(secret);
  return add(std::move(k), error);
}

bool KeySet::add_pem(std::string_view kid, std::string_view pem, const Alg* alg, std::string& error) {
  BIO* bio = BIO_new_mem_buf(pem.data(), int(pem.size()));
  EVP_PKEY* pkey = bio ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr;
  BIO_free(bio);
  if (pkey == nullptr) {
    error = "key '" + std::string(kid) + "': not a PEM public key (BEGIN PUBLIC KEY)";
    return false;
  }
  auto k = std::make_unique<Key>();
  k->kid = std::string(kid);
  k->pkey = pkey;
  if (alg != nullptr) {
    k->alg = *alg;
  } else if (!default_alg(pkey, k->alg)) {
    error = "key '" + k->kid + "': unsupported key type (need RSA, EC P-256/P-384 or Ed25519)";
    return false;
  }
  return add(std::move(k), error);
}

bool KeySet::add_jwks(std::string_view json, std::string& error) {
  simdjson::dom::parser parser;
  simdjson::padded_string text(json);
  simdjson::dom::element doc;
  simdjson::dom::array keys;
  if (parser.parse(text).get(doc) || doc["keys"].get_array().get(keys)) {
    error = "JWKS: not a JSON object with a \"keys\" array";
    return false;
  }
  size_t index = 0;
  for (simdjson::dom::element jwk : keys) {
    std::string where = "JWKS key #" + std::to_string(index++);
    std::string_view kty, kid, alg_text, use;
    if (jwk["kty"].get_string().get(kty)) { error = where + ": missing \"kty\""; return false; }
    if (!jwk["use"].get_string().get(use) && use != "sig") continue;  // encryption keys
    if (jwk["kid"].get_string().get(kid) == simdjson::INCORRECT_TYPE) { error = where + ": \"kid\" is not a string"; return false; }
    auto get_b64 = [&](const char* member, std::string& out) {
      std::string_view v;
      bool ok = false;
      if (!jwk[member].get_string().get(v)) out = decode_b64(v, ok);
      if (!ok) error = where + ": \"" + member + "\" missing or not base64url";
      return ok;
    };
    auto k = std::make_unique<Key>();
    k->kid = std::string(kid);
    Alg dflt;
    if (kty == "RSA") {
      std::string n, e;
      if (!get_b64("n", n) || !get_b64("e", e)) return false;
      k->pkey = rsa_from_ne(n, e);
      dflt = Alg::kRS256;
    } else if (kty == "EC") {
      std::string_view crv;
      if (jwk["crv"].get_string().get(crv)) crv = {};
      size_t len = crv == "P-256" ? 32 : crv == "P-384" ? 48 : 0;
      if (len == 0) { error = where + ": unsupported crv (need P-256 or P-384)"; return false; }
      std::string x, y;
      if (!get_b64("x", x) || !get_b64("y", y)) return false;
      // RFC 7518 6.2.1.2: coordinates are full-length octet strings.
      if (x.size() != len || y.size() != len) { error = where + ": x/y have the wrong length for " + std::string(crv); return false; }
      k->pkey = ec_from_xy(len == 32 ? "P-256" : "P-384", x, y);
      dflt = len == 32 ? Alg::kES256 : Alg::kES384;
    } else if (kty == "OKP") {
      std::string_view crv;
      if (jwk["crv"].get_string().get(crv)) crv = {};
      if (crv != "Ed25519") { error = where + ": unsupported OKP crv (need Ed25519)"; return false; }
      std::string x;
      if (!get_b64("x", x)) return false;
      if (x.size() != 32) { error = where + ": Ed25519 x must be 32 bytes"; return false; }
      k->pkey = EVP_PKEY_new_raw_public_key_ex(nullptr, "ED25519", nullptr,
                                               reinterpret_cast<const uint8_t*>(x.data()), x.size());
      dflt = Alg::kEdDSA;
    } else if (kty == "oct") {
      if (!get_b64("k", k->secret)) return false;
      dflt = Alg::kHS256;
    } else {
      error = where + ": unsupported kty '" + std::string(kty) + "'";
      return false;
    }
    if (kty != "oct" && k->pkey == nullptr) { error = where + ": invalid public key"; return false; }
    if (!jwk["alg"].get_string().get(alg_text)) {
      if (!alg_from_name(alg_text, k->alg)) { error = where + ": unsupported alg '" + std::string(alg_text) + "'"; return false; }
    } else {
      k->alg = dflt;
    }
    if (!add(std::move(k), error)) return false;
  }
  return true;
}

bool parse_key_source(std::string_view text, KeySource& out, std::string& error) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) { error = "expected KID=pem:FILE or KID=secret:FILE"; return false; }
  out.kid = std::string(text.substr(0, eq));
  std::string_view rest = text.substr(eq + 1);
  size_t colon = rest.find(':');
  if (colon == std::string_view::npos || colon + 1 == rest.size()) { error = "expected KID=pem:FILE or KID=secret:FILE"; return false; }
  std::string_view kind = rest.substr(0, colon);
  out.path = std::string(rest.substr(colon + 1));
  size_t slash = kind.find('/');
  out.has_alg = slash != std::string_view::npos;
  if (out.has_alg) {
    if (!alg_from_name(kind.substr(slash + 1), out.alg)) { error = "unknown algorithm '" + std::string(kind.substr(slash + 1)) + "'"; return false; }
    kind = kind.substr(0, slash);
  }
  if (kind == "pem") {
    out.kind = KeySource::Kind::kPem;
  } else if (kind == "secret") {
    out.kind = KeySource::Kind::kSecret;
    if (!out.has_alg) { out.alg = Alg::kHS256; }
  } else {
    error = "key kind must be pem or secret";
    return false;
  }
  return true;
}

bool parse_claim_header(std::string_view text, ClaimHeader& out, std::string& error) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0 || !valid_header_name(text.substr(eq + 1))) {
    error = "expected CLAIM=Header-Name";
    return false;
  }
  out.claim = std::string(text.substr(0, eq));
  out.header = std::string(text.substr(eq + 1));
  return true;
}

bool auth_mode_from_name(std::string_view name, AuthMode& out) {
  if (name == "none") out = AuthMode::kNone;
  else if (name == "api-key") out = AuthMode::kApiKey;
  else if (name == "jwt") out = AuthMode::kJwt;
  else if (name == "any") out = AuthMode::kAny;
  else if (name == "mtls") out = AuthMode::kMtls;
  else return false;
  return true;
}

std::shared_ptr<const JwtState> make_jwt_state(const JwtConfig& cfg, KeySet&& keys, std::string& error) {
  if (keys.size() == 0) { error = "JWT: no keys configured (--jwt-jwks or --jwt-key)"; return nullptr; }
  if (cfg.claim_headers.size() > kMaxClaimHeaders) { error = "JWT: at most 8 --jwt-claim-header"; return nullptr; }
  for (const auto& ch : cfg.claim_headers) {
    if (!valid_header_name(ch.header) || ch.claim.empty()) { error = "JWT: bad claim header '" + ch.header + "'"; return nullptr; }
  }
  if (cfg.max_token_bytes < 64 || cfg.max_token_bytes > 64 * 1024) { error = "JWT: max token size must be 64..65536"; return nullptr; }
  if (cfg.max_json_depth < 2 || cfg.max_json_depth > 64) { error = "JWT: max JSON depth must be 2..64"; return nullptr; }
  auto st = std::make_shared<JwtState>();
  st->config = cfg;
  st->keys = std::move(keys);
  return st;
}

std::shared_ptr<const JwtState> load_jwt_state(const JwtConfig& cfg, std::string& error) {
  KeySet keys;
  if (!cfg.jwks_file.empty()) {
    std::string text;
    if (!read_file(cfg.jwks_file, text, error)) return nullptr;
    if (!keys.add_jwks(text, error)) { error = cfg.jwks_file + ": " + error; return nullptr; }
  }
  for (const KeySource& src : cfg.keys) {
    std::string text;
    if (!read_file(src.path, text, error)) return nullptr;
    bool ok;
    if (src.kind == KeySource::Kind::kPem) {
      ok = keys.add_pem(src.kid, text, src.has_alg ? &src.alg : nullptr, error);
    } else {
      // A trailing newline is almost always an editor artefact, not part of the secret.
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
      ok = keys.add_secret(src.kid, text, src.alg, error);
    }
    OPENSSL_cleanse(text.data(), text.size());
    if (!ok) { error = src.path + ": " + error; return nullptr; }
  }
  return make_jwt_state(cfg, std::move(keys), error);
}

}  // namespace ringway::filter::jwt
