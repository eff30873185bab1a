// Upstream origination: verify by default (system bundle or a CA file that replaces it), and a
// small LRU of resumable sessions per worker fed by OpenSSL's new-session callback; the
// internal client cache is off, so only this cache decides what is resumed.
#include "ringway/tls/client_context.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common.h"
#include "ringway/config/config.h"
#include "ringway/tls/session.h"

namespace ringway::tls {
namespace {

// TLS 1.3 delivers tickets after the handshake, inside SSL_read; TLS 1.2 at its end. Either way
// the Session (SSL app data) knows the cache key.
int on_new_session(SSL* ssl, SSL_SESSION* sess) {
  auto* session = static_cast<Session*>(SSL_get_app_data(ssl));
  if (session == nullptr) return 0;
  session->store_session(sess);
  return 1;  // we keep the reference
}

}  // namespace

ClientSettings client_settings(const config::Config& cfg) {
  ClientSettings s;
  s.ca_file = cfg.upstream_ca;
  return s;
}

ClientSettings client_settings(const config::Config& cfg, const config::UpstreamTls& own) {
  ClientSettings s = client_settings(cfg);
  if (!own.ca.empty()) s.ca_file = own.ca;
  s.cert_file = own.cert;
  s.key_file = own.key;
  s.verify = own.verify;
  return s;
}

std::unique_ptr<ClientContext> ClientContext::build(const ClientSettings& s, std::string& error) {
  ERR_clear_error();
  std::unique_ptr<ClientContext> out(new ClientContext());
  out->verify_ = s.verify;
  out->cache_cap_ = s.session_cache_size == 0 ? 1 : s.session_cache_size;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    error = "cannot create a TLS context: " + detail::take_error_text();
    return nullptr;
  }
  out->ctx_ = ctx;
  if (!detail::apply_protocol_policy(ctx, s.min_version, s.ciphers, s.ciphersuites, error)) {
    return nullptr;
  }
  if (s.verify) {
    const bool ok = s.ca_file.empty() ? SSL_CTX_set_default_verify_paths(ctx) == 1
                                      : SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(),
                                                                      nullptr) == 1;
    if (!ok) {
      error = s.ca_file.empty() ? "cannot load the system CA bundle: " + detail::take_error_text()
                                : "cannot load CA file '" + s.ca_file + "': " +
                                      detail::take_error_text();
      return nullptr;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    SSL_CTX_set_verify_depth(ctx, 8);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  if (!s.cert_file.empty() || !s.key_file.empty()) {
    if (s.cert_file.empty() || s.key_file.empty()) {
      error = "a client certificate needs both a certificate and a key file";
      return nullptr;
    }
    if (!detail::load_cert_and_key(ctx, s.cert_file, s.key_file, error)) return nullptr;
  }
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, on_new_session);
  return out;
}

ClientContext::~ClientContext() {
  for (auto& [key, e] : cache_) SSL_SESSION_free(e.session);
  SSL_CTX_free(ctx_);
}

SSL_SESSION* ClientContext::take(const std::string& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return nullptr;
  SSL_SESSION* s = it->second.session;
  order_.erase(it->second.pos);
  cache_.erase(it);
  if (SSL_SESSION_is_resumable(s) != 1) {
    SSL_SESSION_free(s);
    return nullptr;
  }
  return s;
}

void ClientContext::store(const std::string& key, SSL_SESSION* session) {
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    SSL_SESSION_free(it->second.session);
    it->second.session = session;
    order_.splice(order_.end(), order_, it->second.pos);
    return;
  }
  if (cache_.size() >= cache_cap_) {
    auto oldest = cache_.find(order_.front());
    SSL_SESSION_free(oldest->second.session);
    cache_.erase(oldest);
    order_.pop_front();
  }
  order_.push_back(key);
  cache_.emplace(key, Entry{session, std::prev(order_.end())});
}

}  // namespace ringway::tls
