// Server contexts: one SSL_CTX per certificate (the first is the default that every connection
// starts from; the SNI callback moves a connection to the one whose names match, RFC 6066 3).
// Two certificates with the same names (an RSA and an ECDSA one) share one SSL_CTX so that
// OpenSSL picks by the client's signature algorithms. The default SSL_CTX owns the SNI table
// and every SSL_CTX owns a reference on the ticket keys, through ex_data with free callbacks, so
// nothing here depends on the ServerContext object outliving its connections.
#include "ringway/tls/server_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#include <algorithm>

#include "common.h"
#include "ringway/config/config.h"

namespace ringway::tls {
namespace {

// --- SNI table, owned by the default SSL_CTX ---

struct SniEntry {
  std::string name;  // lower-case; "*.example.com" for wildcards
  SSL_CTX* ctx;
  bool owned;        // holds a reference; false for the default context, which owns the table
};

struct SniTable {
  std::vector<SniEntry> entries;  // settings order; exact names are searched before wildcards
  ~SniTable() {
    for (SniEntry& e : entries) {
      if (e.owned) SSL_CTX_free(e.ctx);
    }
  }
};

void free_sni_table(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<SniTable*>(ptr);
}

void free_keys_ref(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
  delete static_cast<std::shared_ptr<TicketKeys>*>(ptr);
}

int sni_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_sni_table);
  return index;
}

int keys_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, free_keys_ref);
  return index;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// RFC 6125 6.4.3, restricted as browsers do: '*' only as the whole left-most label, matching
// exactly one label.
bool name_matches(std::string_view pattern, std::string_view host) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    const size_t dot = host.find('.');
    return dot != std::string_view::npos && dot > 0 && host.substr(dot) == pattern.substr(1);
  }
  return pattern == host;
}

int on_servername(SSL* ssl, int*, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  const auto* table = static_cast<const SniTable*>(arg);
  char host[256];
  size_t n = strnlen(name, sizeof host - 1);
  for (size_t i = 0; i < n; ++i) {
    const char c = name[i];
    host[i] = c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  }
  if (n > 0 && host[n - 1] == '.') --n;  // "example.com." is the same name
  const std::string_view h(host, n);
  const SniEntry* wildcard = nullptr;
  for (const SniEntry& e : table->entries) {
    if (e.name[0] == '*') {
      if (wildcard == nullptr && name_matches(e.name, h)) wildcard = &e;
    } else if (e.name == h) {
      SSL_set_SSL_CTX(ssl, e.ctx);
      return SSL_TLSEXT_ERR_OK;
    }
  }
  if (wildcard != nullptr) SSL_set_SSL_CTX(ssl, wildcard->ctx);
  // An unknown name gets the default certificate rather than an alert, as nginx and HAProxy do.
  return SSL_TLSEXT_ERR_OK;
}

// RFC 7301 3.2 allows a no_application_protocol alert when nothing matches. We instead proceed
// without ALPN: a client that offered only h2 sees no protocol selected and decides itself (curl
// falls back to HTTP/1.1), and we never claim a protocol we do not speak.
int on_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
            unsigned int inlen, void*) {
  static const unsigned char kOurs[] = "\x08http/1.1";
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kOurs, sizeof kOurs - 1, in, inlen) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// RFC 5077 4 ticket protection with the shared keys: AES-256-CBC + HMAC-SHA256 as nginx does, so
// keys from an nginx key file interoperate. Returns 1 (encrypted), 2 (decrypted; issue a fresh
// ticket), 0 (unknown key name: full handshake), -1 (error).
int on_ticket_key(SSL* ssl, unsigned char key_name[16], unsigned char* iv, EVP_CIPHER_CTX* cctx,
                  EVP_MAC_CTX* hctx, int enc) {
  auto* ref = static_cast<std::shared_ptr<TicketKeys>*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_index()));
  if (ref == nullptr) return -1;
  const TicketKeySet* set = (*ref)->current();
  auto set_mac = [&](const TicketKey& k) {
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
                                          const_cast<unsigned char*>(k.hmac.data()), k.hmac.size()),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
        OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
  };
  if (enc == 1) {
    const TicketKey& k = set->keys[0];
    if (RAND_bytes(iv, EVP_MAX_IV_LENGTH < 16 ? EVP_MAX_IV_LENGTH : 16) != 1) return -1;
    memcpy(key_name, k.name.data(), 16);
    if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
    return set_mac(k) ? 1 : -1;
  }
  for (size_t i = 0; i < set->keys.size(); ++i) {
    const TicketKey& k = set->keys[i];
    if (memcmp(key_name, k.name.data(), 16) != 0) continue;
    if (!set_mac(k)) return -1;
    if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), nullptr, k.aes.data(), iv) != 1) return -1;
    // Always renew: with 1, OpenSSL sends no new ticket on a resumed handshake, and a client
    // should use a TLS 1.3 ticket only once (RFC 8446 C.4), so every second connection would
    // be a full handshake. A renewal is one AES-CBC + HMAC over ~200 bytes.
    return 2;
  }
  return 0;
}

// Names a certificate answers for: SAN dNSNames, or the subject CN only when there is no SAN
// dNSName at all (RFC 6125 6.4.4).
std::vector<std::string> cert_names(X509* cert) {
  std::vector<std::string> names;
  auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr,
                                                            nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const ASN1_IA5STRING* s = gn->d.dNSName;
      names.push_back(lower(std::string_view(reinterpret_cast<const char*>(s->data), s->length)));
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx));
      names.push_back(lower(std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(cn)),
                                             ASN1_STRING_length(cn))));
    }
  }
  return names;
}

SSL_CTX* new_ctx(const ServerSettings& s, const std::shared_ptr<TicketKeys>& keys,
                 std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) {
    error = "cannot create a TLS context: " + detail::take_error_text();
    return nullptr;
  }
  auto fail = [&] {
    SSL_CTX_free(ctx);
    return nullptr;
  };
  if (!detail::apply_protocol_policy(ctx, s.min_version, s.ciphers, s.ciphersuites, error)) {
    return fail();
  }
  // Stateless resumption only: tickets under the shared keys work on every worker and every
  // gateway with the same key file; a per-process session cache would not.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(ctx, 1);
  SSL_CTX_set_max_early_data(ctx, 0);  // no 0-RTT: replayable (RFC 8446 8)
  SSL_CTX_set_timeout(ctx, s.ticket_lifetime_s);
  static const unsigned char kSidCtx[] = "ringway";
  SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
  SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
  SSL_CTX_set_ex_data(ctx, keys_index(), new std::shared_ptr<TicketKeys>(keys));
  SSL_CTX_set_alpn_select_cb(ctx, on_alpn, nullptr);
  // The CA is loaded whenever it is named: a listener may ask for certificates (Session::
  // set_client_auth) even where the default is none.
  if (!s.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.client_ca_file.c_str(), nullptr) != 1) {
      error = "cannot load client CA file '" + s.client_ca_file + "': " + detail::take_error_text();
      return fail();
    }
    STACK_OF(X509_NAME)* cas = SSL_load_client_CA_file(s.client_ca_file.c_str());
    if (cas == nullptr) {
      error = "no CA certificate in client CA file '" + s.client_ca_file + "'";
      ERR_clear_error();
      return fail();
    }
    SSL_CTX_set_client_CA_list(ctx, cas);
    SSL_CTX_set_verify(ctx, detail::verify_mode(s.client_auth), nullptr);
    SSL_CTX_set_verify_depth(ctx, 8);
  }
  return ctx;
}

}  // namespace

bool client_auth_from_name(std::string_view name, ClientAuth& out) {
  if (name == "none") out = ClientAuth::kNone;
  else if (name == "optional") out = ClientAuth::kOptional;
  else if (name == "required") out = ClientAuth::kRequired;
  else return false;
  return true;
}

ServerSettings server_settings(const config::Config& cfg) {
  ServerSettings s;
  for (const config::TlsCertFiles& c : cfg.tls_certs) s.certs.push_back({c.cert, c.key});
  s.min_version = cfg.tls_min_version == "1.3" ? Version::kTls13 : Version::kTls12;
  s.ciphers = cfg.tls_ciphers;
  s.ciphersuites = cfg.tls_ciphersuites;
  s.client_ca_file = cfg.tls_client_ca;
  s.client_auth = cfg.tls_client_auth == "required"   ? ClientAuth::kRequired
                  : cfg.tls_client_auth == "optional" ? ClientAuth::kOptional
                                                      : ClientAuth::kNone;
  s.ticket_key_file = cfg.tls_ticket_key_file;
  return s;
}

std::shared_ptr<const ServerContext> ServerContext::build(const ServerSettings& s,
                                                          std::string& error,
                                                          std::shared_ptr<TicketKeys> keys) {
  ERR_clear_error();
  if (s.certs.empty()) {
    error = "no TLS certificate configured";
    return nullptr;
  }
  if (s.client_auth != ClientAuth::kNone && s.client_ca_file.empty()) {
    error = "client certificate authentication needs a client CA file";
    return nullptr;
  }
  if (!s.ticket_key_file.empty()) {
    keys = TicketKeys::from_file(s.ticket_key_file, error);
    if (keys == nullptr) return nullptr;
  } else if (keys == nullptr || keys->from_file()) {
    keys = TicketKeys::random();
    if (keys == nullptr) {
      error = "cannot generate session ticket keys";
      return nullptr;
    }
  }
  std::shared_ptr<ServerContext> out(new ServerContext());
  out->keys_ = keys;
  auto table = std::make_unique<SniTable>();
  struct Built {
    SSL_CTX* ctx;                     // our reference, dropped at the end
    std::vector<std::string> sorted;  // its names, to find a second key type for the same names
    std::vector<int> key_types;       // EVP_PKEY base ids loaded into ctx
    std::string first_cert;           // for errors
  };
  std::vector<Built> built;
  auto release = [&] {
    for (Built& b : built) SSL_CTX_free(b.ctx);
  };
  for (const CertKeyFiles& files : s.certs) {
    SSL_CTX* ctx = new_ctx(s, keys, error);
    if (ctx == nullptr) return release(), nullptr;
    if (!detail::load_cert_and_key(ctx, files.cert, files.key, error)) {
      SSL_CTX_free(ctx);
      return release(), nullptr;
    }
    std::vector<std::string> names = cert_names(SSL_CTX_get0_certificate(ctx));
    out->names_.push_back(names);
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    auto same = std::find_if(built.begin(), built.end(),
                             [&](const Built& b) { return b.sorted == sorted; });
    const int key_type = EVP_PKEY_get_base_id(SSL_CTX_get0_privatekey(ctx));
    if (same != built.end()) {
      SSL_CTX_free(ctx);
      // Same names and key type: the second could never be chosen; say so rather than guess.
      if (std::find(same->key_types.begin(), same->key_types.end(), key_type) !=
          same->key_types.end()) {
        error = "certificates '" + same->first_cert + "' and '" + files.cert +
                "' have the same names and key type; only one of them could ever be used";
        return release(), nullptr;
      }
      // Another key type for the same names (RSA next to ECDSA): into that context, where
      // OpenSSL keeps one certificate per key type and picks by the client's signature
      // algorithms.
      if (!detail::load_cert_and_key(same->ctx, files.cert, files.key, error)) {
        return release(), nullptr;
      }
      same->key_types.push_back(key_type);
      continue;
    }
    const bool is_default = built.empty();
    if (is_default) {
      SSL_CTX_up_ref(ctx);
      out->default_ = ctx;
    }
    for (const std::string& n : names) {
      if (!is_default) SSL_CTX_up_ref(ctx);
      table->entries.push_back(SniEntry{n, ctx, !is_default});
    }
    built.push_back(Built{ctx, std::move(sorted), {key_type}, files.cert});
  }
  release();
  SniTable* raw = table.release();
  SSL_CTX_set_tlsext_servername_callback(out->default_, on_servername);
  SSL_CTX_set_tlsext_servername_arg(out->default_, raw);
  SSL_CTX_set_ex_data(out->default_, sni_index(), raw);
  return out;
}

std::shared_ptr<const ServerContext> ServerContext::reload(const ServerContext& old,
                                                           const ServerSettings& settings,
                                                           std::string& error) {
  return build(settings, error, settings.ticket_key_file.empty() ? old.keys_ : nullptr);
}

ServerContext::~ServerContext() { SSL_CTX_free(default_); }

}  // namespace ringway::tls
