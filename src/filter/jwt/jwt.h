// JWT bearer authentication (RFC 7519 over RFC 7515 compact JWS) and the per-route auth filter
// (none | api-key | jwt | any). JwtState (config + keys, EVP_PKEYs built at load time) is built
// once and shared read-only by all workers. A Verifier is one worker's scratch state (decode
// buffers, simdjson parser, OpenSSL contexts): one per worker, never shared, no per-request
// allocation of its own (OpenSSL allocates a key context inside EVP_DigestVerifyInit).
//
// Key/algorithm rule: the token's `kid` picks the key and the key fixes the one algorithm it
// accepts; the token's `alg` must equal it exactly. A JWKS key's "alg" is used when present;
// otherwise, and for PEM keys, the default follows the key type: RSA -> RS256, RSA-PSS -> PS256,
// EC P-256 -> ES256, EC P-384 -> ES384, Ed25519 -> EdDSA, oct/secret -> HS256. `--jwt-key
// KID=pem/PS384:FILE` (or secret/HS512:FILE) overrides the default. A token without `kid` is
// accepted only when exactly one key is configured.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "filter/api_key/api_key.h"
#include "ringway/filter/filter.h"


namespace ringway::filter::jwt {

enum class Alg : uint8_t {
  kHS256, kHS384, kHS512, kRS256, kRS384, kRS512, kPS256, kPS384, kPS512, kES256, kES384, kEdDSA,
};
std::string_view alg_name(Alg a);
bool alg_from_name(std::string_view name, Alg& out);  // exact, case-sensitive (RFC 7515 4.1.1)

// A verification key. Immutable after load; pkey is only read afterwards.
struct Key {
  std::string kid;
  Alg alg = Alg::kHS256;
  EVP_PKEY* pkey = nullptr;  // RS/PS/ES/EdDSA; owned
  std::string secret;        // HS*
  uint32_t index = 0;        // position in its KeySet (per-worker HMAC contexts are indexed by it)
  Key() = default;
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;
  ~Key();
};

class KeySet {
 public:
  // JWKS document (RFC 7517 5): RSA n/e, EC crv/x/y (P-256, P-384), OKP Ed25519 x, oct k.
  // Keys with "use" other than "sig" are skipped; private members are ignored.
  bool add_jwks(std::string_view json, std::string& error);
  // SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"). alg null: the key type's default.
  bool add_pem(std::string_view kid, std::string_view pem, const Alg* alg, std::string& error);
  // HMAC secret; must be at least as long as the hash output (RFC 7518 3.2).
  bool add_secret(std::string_view kid, std::string_view secret, Alg alg, std::string& error);

  const Key* find(std::string_view kid) const;  // exact match; never touches the filesystem
  size_t size() const { return keys_.size(); }
  const Key& at(size_t i) const { return *keys_[i]; }

 private:
  bool add(std::unique_ptr<Key> k, std::string& error);
  std::vector<std::unique_ptr<Key>> keys_;
};

// `--jwt-key KID=pem:FILE | KID=secret:FILE | KID=pem/ALG:FILE | KID=secret/ALG:FILE`
struct KeySource {
  enum class Kind : uint8_t { kPem, kSecret };
  std::string kid;
  Kind kind = Kind::kPem;
  std::string path;
  bool has_alg = false;
  Alg alg = Alg::kHS256;
};
bool parse_key_source(std::string_view text, KeySource& out, std::string& error);

// `--jwt-claim-header CLAIM=Header-Name`: the claim's value (string, number or boolean) is
// forwarded in that header; a client-supplied header of that name is always removed.
struct ClaimHeader {
  std::string claim;
  std::string header;
};
bool parse_claim_header(std::string_view text, ClaimHeader& out, std::string& error);

inline constexpr size_t kMaxClaimHeaders = 8;
inline constexpr size_t kMaxRouteRequirements = 32;  // scopes, and claims, per route

struct JwtConfig {
  std::string jwks_file;                      // --jwt-jwks
  std::vector<KeySource> keys;                // --jwt-key (repeatable)
  uint32_t leeway_s = 60;                     // --jwt-leeway, applied to exp, nbf and iat
  std::string issuer;                         // --jwt-issuer; "" = not checked
  std::vector<std::string> audiences;         // --jwt-audience (repeatable); empty = not checked
  std::vector<ClaimHeader> claim_headers;     // --jwt-claim-header (at most kMaxClaimHeaders)
  uint32_t max_token_bytes = 8 * 1024;        // longer tokens are rejected before decoding
  uint32_t max_json_depth = 8;                // header/payload nesting cap, checked before parsing
  bool cache_verified = true;                 // remember tokens verified with asymmetric keys
};

// Config plus loaded keys: what every worker shares.
struct JwtState {
  JwtConfig config;
  KeySet keys;
};
// Reads the JWKS/PEM/secret files named by cfg and validates it.
std::shared_ptr<const JwtState> load_jwt_state(const JwtConfig& cfg, std::string& error);
// Same, for keys already in hand (tests, JSON config with inline keys).
std::shared_ptr<const JwtState> make_jwt_state(const JwtConfig& cfg, KeySet&& keys,
                                               std::string& error);

// What one route requires. Scopes come from "scope" (space-separated string, RFC 8693 4.2) or
// "scp" (array of strings); all listed must be present. A required claim must be present and,
// when value is non-empty, equal it (string claim), contain it (array of strings), or match its
// JSON text (number/boolean).
struct RequiredClaim {
  std::string name;
  std::string value;
};
// kMtls: the TLS handshake must have verified a client certificate (RequestContext::peer_subject).
enum class AuthMode : uint8_t { kNone, kApiKey, kJwt, kAny, kMtls };
bool auth_mode_from_name(std::string_view name, AuthMode& out);  // none|api-key|jwt|any|mtls
struct RouteAuth {
  AuthMode mode = AuthMode::kNone;
  std::vector<std::string> scopes;      // at most kMaxRouteRequirements
  std::vector<RequiredClaim> claims;    // at most kMaxRouteRequirements
  std::vector<std::string> subjects;    // kMtls: admitted subjects (exact); empty = any verified
};

enum class Status : uint8_t {
  kOk,
  kMissing,            // no bearer token
  kTooLarge,           // longer than max_token_bytes
  kMalformed,          // not three non-empty segments, bad JSON, wrong member types, duplicates
  kBadBase64,          // not strict base64url (RFC 7515 2, RFC 4648 5 without padding)
  kTooDeep,            // JSON nesting above max_json_depth
  kAlgNone,            // "none" in any casing
  kUnsupportedAlg,
  kAlgMismatch,        // alg is not the one the key is configured for
  kMissingKid,         // no kid while more than one key is configured
  kUnknownKid,
  kEmbeddedKey,        // jwk, jku, x5u or x5c in the header
  kUnknownCrit,        // crit (or b64) present: no extension is understood (RFC 7515 4.1.11)
  kBadSignature,
  kMissingExp,
  kExpired,
  kNotYetValid,
  kIssuedInFuture,
  kBadIssuer,
  kBadAudience,
  kBadClaim,           // a time claim is not a number, or a forwarded claim has control chars
  kInsufficientScope,  // valid token, route requirement not met (403)
};
std::string_view status_text(Status s);

// Per-worker token verifier.
class Verifier {
 public:
  explicit Verifier(std::shared_ptr<const JwtState> state);
  ~Verifier();
  Verifier(const Verifier&) = delete;
  Verifier& operator=(const Verifier&) = delete;

  // The whole check: structure, header, key selection, signature, then claims against now_s
  // (seconds since the epoch) and the route's requirements (route may be null).
  Status verify(std::string_view token, int64_t now_s, const RouteAuth* route);

  // Step 1: structure, header and signature. On kOk the payload is decoded and kept for step 2.
  Status verify_token(std::string_view token);
  // Step 2: claims of the payload kept by the last successful verify_token().
  Status check_claims(int64_t now_s, const RouteAuth* route);

  // Only the signature: raw JWS signature bytes over signing_input with key (key.alg decides).
  bool verify_signature(const Key& key, std::string_view signing_input,
                        std::span<const uint8_t> signature);

  // After check_claims() == kOk: the value of config.claim_headers[i] ("" and false if the
  // claim was absent). Views into this Verifier, valid until its next verify.
  std::string_view claim_value(size_t i, bool* present = nullptr) const;
  const Key* last_key() const { return last_key_; }
  // verify_token() calls answered from the cache of tokens already verified with an asymmetric
  // key (jwt_verify.cc): the signature is not checked again, the claims always are.
  uint64_t cache_hits() const;
  const JwtState& state() const { return *state_; }

 private:
  std::shared_ptr<const JwtState> state_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  const Key* last_key_ = nullptr;
};

// Wall clock in seconds; injectable so tests can fix "now".
using WallClock = int64_t (*)();
int64_t system_wall_clock();

// The auth filter the lead wires: routes[match.route_index] (or default_auth when the index is
// beyond the vector) selects the mode. jwt and/or api_keys may be null when no route needs them
// (validate() checks that). For `any`, a bearer token is checked if present, otherwise an API
// key; a failed credential never falls back to the other kind.
class AuthFilterFactory final : public FilterFactory {
 public:
  AuthFilterFactory(std::shared_ptr<const JwtState> jwt,
                    std::shared_ptr<const api_key::KeyStore> api_keys,
                    std::vector<RouteAuth> routes, RouteAuth default_auth,
                    WallClock clock = &system_wall_clock);
  // Checks that every mode in use has its credentials configured and requirement counts fit.
  bool validate(std::string& error) const;
  std::unique_ptr<Filter> create(unsigned worker_index, unsigned worker_count) const override;

 private:
  friend class AuthFilter;
  std::shared_ptr<const JwtState> jwt_;
  std::shared_ptr<const api_key::KeyStore> api_keys_;
  std::vector<RouteAuth> routes_;
  RouteAuth default_auth_;
  WallClock clock_;
};

}  // namespace ringway::filter::jwt
