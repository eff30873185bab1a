// Test/bench helper: generates keys and signs JWS compact tokens with OpenSSL, independently of
// the verifier under test (it shares only the base64url encoder). Allocates freely; any thread.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <stdexcept>
#include <string>

#include "filter/jwt/base64url.h"
#include "filter/jwt/jwt.h"

namespace ringway::filter::jwt::testing {

inline bool is_hs(Alg a) { return a <= Alg::kHS512; }
inline bool is_es(Alg a) { return a == Alg::kES256 || a == Alg::kES384; }

inline const char* md_name(Alg a) {
  switch (a) {
    case Alg::kHS384: case Alg::kRS384: case Alg::kPS384: case Alg::kES384: return "SHA384";
    case Alg::kHS512: case Alg::kRS512: case Alg::kPS512: return "SHA512";
    default: return "SHA256";
  }
}

// Private key for an asymmetric alg (EVP_PKEY_Q_keygen), or null for HS*.
inline EVP_PKEY* generate_key(Alg a) {
  if (is_hs(a)) return nullptr;
  if (a == Alg::kEdDSA) return EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (a == Alg::kES256) return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (a == Alg::kES384) return EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-384");
  return EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
}

inline std::string public_pem(EVP_PKEY* k) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PUBKEY(bio, k);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

// Raw signature bytes as JWS wants them. der_ecdsa keeps OpenSSL's DER form (an attack case).
inline std::string sign_raw(Alg a, EVP_PKEY* key, const std::string& secret, const std::string& input,
                            bool der_ecdsa = false) {
  if (is_hs(a)) {
    unsigned char out[EVP_MAX_MD_SIZE];
    size_t n = 0;
    EVP_Q_mac(nullptr, "HMAC", nullptr, md_name(a), nullptr, secret.data(), secret.size(),
              reinterpret_cast<const unsigned char*>(input.data()), input.size(), out, sizeof out, &n);
    return std::string(reinterpret_cast<char*>(out), n);
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX* pctx = nullptr;
  EVP_DigestSignInit_ex(ctx, &pctx, a == Alg::kEdDSA ? nullptr : md_name(a), nullptr, nullptr, key, nullptr);
  if (a >= Alg::kPS256 && a <= Alg::kPS512) {
    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
  }
  size_t n = 0;
  EVP_DigestSign(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::string sig(n, '\0');
  EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &n,
                 reinterpret_cast<const unsigned char*>(input.data()), input.size());
  sig.resize(n);
  EVP_MD_CTX_free(ctx);
  if (!is_es(a) || der_ecdsa) return sig;
  const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
  ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
  size_t half = a == Alg::kES256 ? 32 : 48;
  std::string raw(2 * half, '\0');
  BN_bn2binpad(ECDSA_SIG_get0_r(es), reinterpret_cast<unsigned char*>(raw.data()), int(half));
  BN_bn2binpad(ECDSA_SIG_get0_s(es), reinterpret_cast<unsigned char*>(raw.data()) + half, int(half));
  ECDSA_SIG_free(es);
  return raw;
}

// header and payload are JSON texts; returns the compact serialization.
inline std::string mint(Alg a, EVP_PKEY* key, const std::string& secret, const std::string& header,
                        const std::string& payload, bool der_ecdsa = false) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(sign_raw(a, key, secret, input, der_ecdsa));
}

inline std::string header_for(Alg a, const std::string& kid) {
  std::string h = "{\"alg\":\"" + std::string(alg_name(a)) + "\",\"typ\":\"JWT\"";
  if (!kid.empty()) h += ",\"kid\":\"" + kid + "\"";
  return h + "}";
}

}  // namespace ringway::filter::jwt::testing
