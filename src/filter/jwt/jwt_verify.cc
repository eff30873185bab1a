// Token verification: RFC 7515 compact JWS structure and signature, then RFC 7519 claims.
// Order matters for safety: the header is the only thing read before the signature is checked,
// and it is read only to pick the key; the payload is decoded after the signature verifies.
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <simdjson.h>

#include <charconv>
#include <cstring>
#include <functional>
#include <string>
#include <ctime>

#include "filter/jwt/base64url.h"
#include "filter/jwt/jwt.h"
#include "ringway/core/ascii.h"

namespace ringway::filter::jwt {

namespace od = simdjson::ondemand;

namespace {

constexpr size_t kMaxSignature = 1024;  // RSA-8192; anything longer cannot be valid here


// Nesting of [ and { outside strings. Checked on the decoded bytes before simdjson sees them so
// a hostile document cannot make the parser work in proportion to its depth.
bool depth_ok(const uint8_t* p, size_t n, unsigned max_depth) {
  unsigned depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = p[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      if (depth > 0) --depth;
    }
  }
  return true;
}

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool parse_number(std::string_view raw, double& out) {
  raw = trim_right(raw);
  if (raw.empty()) return false;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), out);
  return ec == std::errc() && end == raw.data() + raw.size();
}

// Appends a DER INTEGER for the unsigned big-endian value v (X.690 8.3: minimal, non-negative).
size_t der_integer(uint8_t* out, const uint8_t* v, size_t n) {
  while (n > 1 && v[0] == 0) { ++v; --n; }
  size_t o = 0;
  out[o++] = 0x02;
  bool pad = (v[0] & 0x80) != 0;
  out[o++] = static_cast<uint8_t>(n + (pad ? 1 : 0));
  if (pad) out[o++] = 0;
  std::memcpy(out + o, v, n);
  return o + n;
}

bool all_zero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

// simdjson 3.0 on-demand has no document::at_end(); a location that is still in bounds after
// the top-level object means trailing bytes ("{...}{...}"), which RFC 8259 2 does not allow.
bool at_end(od::document& doc) {
  const char* loc = nullptr;
  return doc.current_location().get(loc) != simdjson::SUCCESS;
}

}  // namespace

// Tokens whose signature checked out with an asymmetric key, by their exact bytes: the signature
// is a pure function of the token and the (fixed) key set, so an identical token needs no second
// RSA/ECDSA/EdDSA verification (38-176 us) — only its claims are checked again, every time,
// against the clock and the route. Direct-mapped, per Verifier (one per worker): no locks; a
// slot's strings keep their capacity, so a warm cache allocates only when a longer token lands.
struct CachedToken {
  uint64_t hash = 0;
  const Key* key = nullptr;  // null: empty slot
  std::string token;
  std::string payload;       // decoded payload, as verify_token leaves it for check_claims
};
constexpr size_t kCacheSlots = 1024;
constexpr size_t kMaxCachedToken = 4096;

bool is_hmac(Alg a) { return a == Alg::kHS256 || a == Alg::kHS384 || a == Alg::kHS512; }

struct Verifier::Impl {
  size_t cap = 0;
  std::unique_ptr<CachedToken[]> cache;  // kCacheSlots, or null when JwtConfig::cache_verified is off
  uint64_t cache_hits = 0;
  std::unique_ptr<uint8_t[]> head;     // decoded header, cap + padding
  std::unique_ptr<uint8_t[]> payload;  // decoded payload, cap + padding
  size_t payload_len = 0;
  bool ready = false;  // false if the parser could not allocate: every token is then refused
  uint8_t sig[kMaxSignature];
  od::parser parser;
  EVP_MD_CTX* md_ctx = nullptr;
  EVP_MD* md[3] = {nullptr, nullptr, nullptr};  // SHA-256/384/512
  EVP_MAC* mac = nullptr;
  std::vector<EVP_MAC_CTX*> mac_ctx;            // by Key::index; null for non-HMAC keys
  std::string_view claim_values[kMaxClaimHeaders];
  bool claim_present[kMaxClaimHeaders] = {};

  const EVP_MD* md_for(Alg a) const {
    switch (a) {
      case Alg::kHS256: case Alg::kRS256: case Alg::kPS256: case Alg::kES256: return md[0];
      case Alg::kHS384: case Alg::kRS384: case Alg::kPS384: case Alg::kES384: return md[1];
      case Alg::kHS512: case Alg::kRS512: case Alg::kPS512: return md[2];
      case Alg::kEdDSA: return nullptr;
    }
    return nullptr;
  }
  const char* md_name(Alg a) const {
    const EVP_MD* m = md_for(a);
    return m == md[0] ? "SHA256" : m == md[1] ? "SHA384" : "SHA512";
  }

  ~Impl() {
    for (EVP_MAC_CTX* c : mac_ctx) EVP_MAC_CTX_free(c);
    EVP_MAC_free(mac);
    for (EVP_MD* m : md) EVP_MD_free(m);
    EVP_MD_CTX_free(md_ctx);
  }
};

Verifier::Verifier(std::shared_ptr<const JwtState> state) : state_(std::move(state)), impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  const JwtConfig& cfg = state_->config;
  m.cap = cfg.max_token_bytes;
  if (cfg.cache_verified) m.cache = std::make_unique<CachedToken[]>(kCacheSlots);
  m.head = std::make_unique<uint8_t[]>(m.cap + simdjson::SIMDJSON_PADDING);
  m.payload = std::make_unique<uint8_t[]>(m.cap + simdjson::SIMDJSON_PADDING);
  // Sized once so that parsing never allocates on the request path.
  m.ready = m.parser.allocate(m.cap, cfg.max_json_depth + 1) == simdjson::SUCCESS;
  m.md_ctx = EVP_MD_CTX_new();
  m.md[0] = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  m.md[1] = EVP_MD_fetch(nullptr, "SHA384", nullptr);
  m.md[2] = EVP_MD_fetch(nullptr, "SHA512", nullptr);
  m.mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  const KeySet& keys = state_->keys;
  m.mac_ctx.assign(keys.size(), nullptr);
  for (size_t i = 0; i < keys.size(); ++i) {
    const Key& k = keys.at(i);
    if (!k.secret.empty() && k.pkey == nullptr && m.mac != nullptr) {
      // Keyed once here; each verification re-initialises with a null key, which reuses the
      // already-hashed key pads instead of recomputing them.
      EVP_MAC_CTX* c = EVP_MAC_CTX_new(m.mac);
      OSSL_PARAM params[] = {
          OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>(m.md_name(k.alg)), 0),
          OSSL_PARAM_construct_end()};
      if (c != nullptr && EVP_MAC_init(c, reinterpret_cast<const uint8_t*>(k.secret.data()), k.secret.size(), params) == 1) {
        m.mac_ctx[i] = c;
      } else {
        EVP_MAC_CTX_free(c);
      }
    }
  }
}

Verifier::~Verifier() = default;

bool Verifier::verify_signature(const Key& key, std::string_view input, std::span<const uint8_t> sig) {
  Impl& m = *impl_;
  const auto* data = reinterpret_cast<const uint8_t*>(input.data());
  switch (key.alg) {
    case Alg::kHS256: case Alg::kHS384: case Alg::kHS512: {
      if (key.secret.empty()) return false;
      uint8_t out[EVP_MAX_MD_SIZE];
      size_t out_len = 0;
      EVP_MAC_CTX* c = key.index < m.mac_ctx.size() && &state_->keys.at(key.index) == &key ? m.mac_ctx[key.index] : nullptr;
      bool ok;
      if (c != nullptr) {
        ok = EVP_MAC_init(c, nullptr, 0, nullptr) == 1 && EVP_MAC_update(c, data, input.size()) == 1 &&
             EVP_MAC_final(c, out, &out_len, sizeof out) == 1;
      } else {  // a key from outside this verifier's state (tests): one-shot
        ok = EVP_Q_mac(nullptr, "HMAC", nullptr, m.md_name(key.alg), nullptr, key.secret.data(), key.secret.size(),
                       data, input.size(), out, sizeof out, &out_len) != nullptr;
      }
      // RFC 7515 10.7 / RFC 7518 3.2: compare the whole MAC in constant time.
      return ok && sig.size() == out_len && CRYPTO_memcmp(out, sig.data(), out_len) == 0;
    }
    case Alg::kES256: case Alg::kES384: {
      // RFC 7518 3.4: the JWS signature is R || S, each exactly the curve's byte length; OpenSSL
      // wants an ECDSA-Sig-Value in DER. A DER signature in the token has the wrong length.
      size_t half = key.alg == Alg::kES256 ? 32 : 48;
      if (sig.size() != 2 * half) return false;
      if (all_zero(sig.data(), half) || all_zero(sig.data() + half, half)) return false;
      uint8_t der[2 + 2 * (3 + 48)];
      size_t body = der_integer(der + 2, sig.data(), half);
      body += der_integer(der + 2 + body, sig.data() + half, half);
      der[0] = 0x30;
      der[1] = static_cast<uint8_t>(body);
      if (key.pkey == nullptr) return false;
      bool ok = EVP_DigestVerifyInit(m.md_ctx, nullptr, m.md_for(key.alg), nullptr, key.pkey) == 1 &&
                EVP_DigestVerify(m.md_ctx, der, body + 2, data, input.size()) == 1;
      EVP_MD_CTX_reset(m.md_ctx);
      return ok;
    }
    case Alg::kEdDSA: {
      if (key.pkey == nullptr || sig.size() != 64) return false;
      bool ok = EVP_DigestVerifyInit(m.md_ctx, nullptr, nullptr, nullptr, key.pkey) == 1 &&
                EVP_DigestVerify(m.md_ctx, sig.data(), sig.size(), data, input.size()) == 1;
      EVP_MD_CTX_reset(m.md_ctx);
      return ok;
    }
    default: {  // RS*, PS*
      if (key.pkey == nullptr) return false;
      EVP_PKEY_CTX* pctx = nullptr;
      bool ok = EVP_DigestVerifyInit(m.md_ctx, &pctx, m.md_for(key.alg), nullptr, key.pkey) == 1;
      if (ok && key.alg >= Alg::kPS256) {
        // RFC 7518 3.5: MGF1 with the same hash, salt length equal to the hash output.
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) == 1;
      }
      ok = ok && EVP_DigestVerify(m.md_ctx, sig.data(), sig.size(), data, input.size()) == 1;
      EVP_MD_CTX_reset(m.md_ctx);
      return ok;
    }
  }
}

Status Verifier::verify_token(std::string_view token) {
  Impl& m = *impl_;
  m.payload_len = 0;
  last_key_ = nullptr;
  if (token.empty()) return Status::kMissing;
  if (token.size() > m.cap) return Status::kTooLarge;
  if (!m.ready) return Status::kMalformed;
  const uint64_t hash = m.cache ? std::hash<std::string_view>{}(token) : 0;
  CachedToken* slot = m.cache ? &m.cache[hash % kCacheSlots] : nullptr;
  if (slot != nullptr && slot->key != nullptr && slot->hash == hash && slot->token == token) {
    std::memcpy(m.payload.get(), slot->payload.data(), slot->payload.size());
    m.payload_len = slot->payload.size();
    last_key_ = slot->key;
    ++m.cache_hits;
    return Status::kOk;
  }
  // RFC 7515 7.1: exactly three base64url segments; the JWE form (five) and the detached or
  // unsecured forms (empty signature) are not accepted.
  size_t d1 = token.find('.');
  if (d1 == std::string_view::npos) return Status::kMalformed;
  size_t d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) return Status::kMalformed;
  std::string_view h64 = token.substr(0, d1), p64 = token.substr(d1 + 1, d2 - d1 - 1), s64 = token.substr(d2 + 1);
  if (h64.empty() || p64.empty() || s64.empty()) return Status::kMalformed;

  long hn = base64url_decode(h64, m.head.get(), m.cap);
  if (hn < 0) return Status::kBadBase64;
  if (!depth_ok(m.head.get(), size_t(hn), state_->config.max_json_depth)) return Status::kTooDeep;

  std::string_view alg_text, kid;
  bool have_alg = false, have_kid = false, embedded = false, crit = false;
  {
    od::document doc;
    od::object obj;
    if (m.parser.iterate(simdjson::padded_string_view(m.head.get(), size_t(hn), size_t(hn) + simdjson::SIMDJSON_PADDING)).get(doc) ||
        doc.get_object().get(obj)) {
      return Status::kMalformed;
    }
    for (auto field : obj) {
      std::string_view name;
      if (field.unescaped_key().get(name)) return Status::kMalformed;
      if (name == "alg") {
        if (have_alg || field.value().get_string().get(alg_text)) return Status::kMalformed;
        have_alg = true;
      } else if (name == "kid") {
        if (have_kid || field.value().get_string().get(kid)) return Status::kMalformed;
        have_kid = true;
      } else if (name == "jwk" || name == "jku" || name == "x5u" || name == "x5c") {
        // RFC 8725 3.10: never take a key from the token it is meant to verify.
        embedded = true;
      } else if (name == "crit" || name == "b64") {
        // RFC 7515 4.1.11: we implement no extension, so any critical one must be refused; b64
        // (RFC 7797) changes what is signed and is only legal under crit.
        crit = true;
      }
    }
    if (!at_end(doc)) return Status::kMalformed;
  }
  if (!have_alg) return Status::kMalformed;
  if (core::iequals(alg_text, "none")) return Status::kAlgNone;
  if (embedded) return Status::kEmbeddedKey;
  if (crit) return Status::kUnknownCrit;
  Alg alg;
  if (!alg_from_name(alg_text, alg)) return Status::kUnsupportedAlg;

  const KeySet& keys = state_->keys;
  const Key* key = nullptr;
  if (have_kid) {
    key = keys.find(kid);
    if (key == nullptr) return Status::kUnknownKid;
  } else {
    if (keys.size() != 1) return Status::kMissingKid;
    key = &keys.at(0);
  }
  // The key, not the token, decides the algorithm (RFC 8725 3.1): this is what stops an HS256
  // token "signed" with an RSA public key.
  if (alg != key->alg) return Status::kAlgMismatch;

  if (base64url_decoded_size(s64.size()) > kMaxSignature) return Status::kBadSignature;
  long sn = base64url_decode(s64, m.sig, sizeof m.sig);
  if (sn < 0) return Status::kBadBase64;
  if (!verify_signature(*key, token.substr(0, d2), std::span<const uint8_t>(m.sig, size_t(sn)))) {
    return Status::kBadSignature;
  }
  long pn = base64url_decode(p64, m.payload.get(), m.cap);
  if (pn < 0) return Status::kBadBase64;
  m.payload_len = size_t(pn);
  last_key_ = key;
  // HMAC costs ~2 us, about what a lookup saves; asymmetric verifications are 20-80x that.
  if (slot != nullptr && !is_hmac(key->alg) && token.size() <= kMaxCachedToken) {
    slot->hash = hash;
    slot->key = key;
    slot->token.assign(token);
    slot->payload.assign(reinterpret_cast<const char*>(m.payload.get()), m.payload_len);
  }
  return Status::kOk;
}

uint64_t Verifier::cache_hits() const { return impl_->cache_hits; }

Status Verifier::check_claims(int64_t now_s, const RouteAuth* route) {
  Impl& m = *impl_;
  const JwtConfig& cfg = state_->config;
  if (m.payload_len == 0) return Status::kMalformed;
  if (!depth_ok(m.payload.get(), m.payload_len, cfg.max_json_depth)) return Status::kTooDeep;
  for (size_t i = 0; i < kMaxClaimHeaders; ++i) {
    m.claim_values[i] = {};
    m.claim_present[i] = false;
  }
  const size_t n_scopes = route ? std::min(route->scopes.size(), kMaxRouteRequirements) : 0;
  const size_t n_claims = route ? std::min(route->claims.size(), kMaxRouteRequirements) : 0;
  const size_t n_headers = std::min(cfg.claim_headers.size(), kMaxClaimHeaders);

  enum : uint32_t { kExp = 1, kNbf = 2, kIat = 4, kIss = 8, kAud = 16, kScope = 32, kScp = 64 };
  uint32_t seen = 0;
  uint64_t claims_seen = 0, claims_ok = 0, scopes_ok = 0;
  uint32_t headers_seen = 0;
  double exp = 0, nbf = 0, iat = 0;
  bool iss_ok = false, aud_ok = false;

  od::document doc;
  od::object obj;
  if (m.parser.iterate(simdjson::padded_string_view(m.payload.get(), m.payload_len, m.payload_len + simdjson::SIMDJSON_PADDING)).get(doc) ||
      doc.get_object().get(obj)) {
    return Status::kMalformed;
  }
  for (auto field : obj) {
    std::string_view name;
    if (field.unescaped_key().get(name)) return Status::kMalformed;
    uint32_t role = name == "exp" ? uint32_t(kExp) : name == "nbf" ? uint32_t(kNbf) : name == "iat" ? uint32_t(kIat)
                  : name == "iss" ? uint32_t(kIss) : name == "aud" ? uint32_t(kAud) : name == "scope" ? uint32_t(kScope)
                  : name == "scp" ? uint32_t(kScp) : 0u;
    uint64_t claim_bits = 0;
    for (size_t i = 0; i < n_claims; ++i) if (route->claims[i].name == name) claim_bits |= uint64_t(1) << i;
    uint32_t header_bits = 0;
    for (size_t i = 0; i < n_headers; ++i) if (cfg.claim_headers[i].claim == name) header_bits |= 1u << i;
    if (role == 0 && claim_bits == 0 && header_bits == 0) continue;  // not ours: skipped unread
    // RFC 7519 4: duplicate member names make the claim set ambiguous; refuse them.
    if ((seen & role) || (claims_seen & claim_bits) || (headers_seen & header_bits)) return Status::kMalformed;
    seen |= role;
    claims_seen |= claim_bits;
    headers_seen |= header_bits;

    od::value v;
    od::json_type type;
    if (std::move(field.value()).get(v) || v.type().get(type)) return Status::kMalformed;

    // Applies one string (the whole value, or one array element) to every role of this member.
    auto on_string = [&](std::string_view s, bool whole) {
      if (role == kIss && whole && !cfg.issuer.empty() && s == cfg.issuer) iss_ok = true;
      if (role == kAud) for (const auto& a : cfg.audiences) if (a == s) aud_ok = true;
      if (role == kScope || role == kScp) {
        // "scope" is space-separated (RFC 8693 4.2); "scp" elements are whole scopes.
        std::string_view rest = s;
        while (!rest.empty()) {
          size_t sp = role == kScope ? rest.find(' ') : std::string_view::npos;
          std::string_view tok = rest.substr(0, sp);
          rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
          for (size_t i = 0; i < n_scopes; ++i) if (!tok.empty() && route->scopes[i] == tok) scopes_ok |= uint64_t(1) << i;
        }
      }
      for (size_t i = 0; i < n_claims; ++i) {
        if ((claim_bits >> i & 1) && (route->claims[i].value.empty() || route->claims[i].value == s)) claims_ok |= uint64_t(1) << i;
      }
    };

    switch (type) {
      case od::json_type::string: {
        std::string_view s;
        if (v.get_string().get(s)) return Status::kMalformed;
        if (role & (kExp | kNbf | kIat)) return Status::kBadClaim;
        on_string(s, true);
        for (size_t i = 0; i < n_headers; ++i) if (header_bits >> i & 1) { m.claim_values[i] = s; m.claim_present[i] = true; }
        break;
      }
      case od::json_type::array: {
        if (role & (kExp | kNbf | kIat | kIss)) return Status::kBadClaim;
        od::array arr;
        if (v.get_array().get(arr)) return Status::kMalformed;
        for (auto el : arr) {
          od::value ev;
          od::json_type et;
          if (std::move(el).get(ev) || ev.type().get(et)) return Status::kMalformed;
          if (et != od::json_type::string) {
            if (role == kAud || role == kScp) return Status::kBadClaim;  // RFC 7519 4.1.3: StringOrURI
            continue;
          }
          std::string_view s;
          if (ev.get_string().get(s)) return Status::kMalformed;
          on_string(s, false);
        }
        // A required claim with no value is satisfied by presence, even of an empty array.
        for (size_t i = 0; i < n_claims; ++i) if ((claim_bits >> i & 1) && route->claims[i].value.empty()) claims_ok |= uint64_t(1) << i;
        break;  // arrays are not forwarded as header values
      }
      case od::json_type::number:
      case od::json_type::boolean: {
        std::string_view raw = trim_right(v.raw_json_token());
        double num = 0;
        if (type == od::json_type::number ? !parse_number(raw, num) : (raw != "true" && raw != "false")) return Status::kMalformed;
        if (role & (kExp | kNbf | kIat)) {
          if (type != od::json_type::number) return Status::kBadClaim;
          (role == kExp ? exp : role == kNbf ? nbf : iat) = num;
        } else if (role != 0) {
          return Status::kBadClaim;  // iss/aud/scope must be strings
        }
        for (size_t i = 0; i < n_claims; ++i) {
          if ((claim_bits >> i & 1) && (route->claims[i].value.empty() || route->claims[i].value == raw)) claims_ok |= uint64_t(1) << i;
        }
        for (size_t i = 0; i < n_headers; ++i) if (header_bits >> i & 1) { m.claim_values[i] = raw; m.claim_present[i] = true; }
        break;
      }
      default:  // object or null
        if (role != 0) return Status::kBadClaim;
        for (size_t i = 0; i < n_claims; ++i) if ((claim_bits >> i & 1) && route->claims[i].value.empty() && type == od::json_type::object) claims_ok |= uint64_t(1) << i;
        break;
    }
  }
  if (!at_end(doc)) return Status::kMalformed;

  // RFC 7519 4.1.4/4.1.5: exp is required here (a token that never expires is not accepted);
  // leeway absorbs clock skew between issuer and gateway.
  const double now = double(now_s), leeway = double(cfg.leeway_s);
  if (!(seen & kExp)) return Status::kMissingExp;
  if (now >= exp + leeway) return Status::kExpired;
  if ((seen & kNbf) && now + leeway < nbf) return Status::kNotYetValid;
  if ((seen & kIat) && iat > now + leeway) return Status::kIssuedInFuture;
  if (!cfg.issuer.empty() && !iss_ok) return Status::kBadIssuer;
  if (!cfg.audiences.empty() && !aud_ok) return Status::kBadAudience;  // RFC 7519 4.1.3
  for (size_t i = 0; i < n_headers; ++i) {
    // A value that would split or end a header line is never forwarded (and never silently
    // dropped either: the upstream might then treat the request as anonymous).
    for (unsigned char c : m.claim_values[i]) if (c < 0x20 || c == 0x7f) return Status::kBadClaim;
  }
  uint64_t all_scopes = n_scopes == 64 ? ~uint64_t(0) : (uint64_t(1) << n_scopes) - 1;
  uint64_t all_claims = n_claims == 64 ? ~uint64_t(0) : (uint64_t(1) << n_claims) - 1;
  if ((scopes_ok & all_scopes) != all_scopes || (claims_ok & all_claims) != all_claims) return Status::kInsufficientScope;
  return Status::kOk;
}

Status Verifier::verify(std::string_view token, int64_t now_s, const RouteAuth* route) {
  Status s = verify_token(token);
  if (s != Status::kOk) return s;
  return check_claims(now_s, route);
}

std::string_view Verifier::claim_value(size_t i, bool* present) const {
  bool p = i < kMaxClaimHeaders && impl_->claim_present[i];
  if (present) *present = p;
  return p ? impl_->claim_values[i] : std::string_view{};
}

std::string_view status_text(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kMissing: return "missing bearer token";
    case Status::kTooLarge: return "token too large";
    case Status::kMalformed: return "malformed token";
    case Status::kBadBase64: return "token is not valid base64url";
    case Status::kTooDeep: return "token JSON nested too deeply";
    case Status::kAlgNone: return "unsigned tokens are not accepted";
    case Status::kUnsupportedAlg: return "unsupported algorithm";
    case Status::kAlgMismatch: return "algorithm does not match the key";
    case Status::kMissingKid: return "token has no key id";
    case Status::kUnknownKid: return "unknown key id";
    case Status::kEmbeddedKey: return "keys embedded in the token are not accepted";
    case Status::kUnknownCrit: return "unsupported critical header";
    case Status::kBadSignature: return "invalid signature";
    case Status::kMissingExp: return "token has no expiry";
    case Status::kExpired: return "token expired";
    case Status::kNotYetValid: return "token not yet valid";
    case Status::kIssuedInFuture: return "token issued in the future";
    case Status::kBadIssuer: return "wrong issuer";
    case Status::kBadAudience: return "wrong audience";
    case Status::kBadClaim: return "invalid claim";
    case Status::kInsufficientScope: return "insufficient scope";
  }
  return "invalid token";
}

int64_t system_wall_clock() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  return ts.tv_sec;
}

}  // namespace ringway::filter::jwt
