// TLS origination to upstream services: verification settings, an optional client certificate
// and a small cache of resumable sessions. Threading: one ClientContext per worker (the session
// cache is not locked); it must outlive the client Sessions made from it. The SSL_CTX inside
// could be shared, but per-worker objects keep the cache lock-free.
#pragma once

#include <cstddef>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "ringway/tls/server_context.h"  // Version, kDefault*

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

namespace ringway::config {
struct UpstreamTls;
}

namespace ringway::tls {

struct ClientSettings {
  bool verify = true;             // false: no certificate or name check (log a warning at start)
  std::string ca_file;            // "" = the system CA bundle; else replaces it
  std::string cert_file;          // optional client certificate (mTLS), PEM with chain
  std::string key_file;
  Version min_version = Version::kTls12;
  std::string ciphers;            // "" = kDefaultCiphers
  std::string ciphersuites;       // "" = kDefaultCiphersuites
  size_t session_cache_size = 256;  // resumable sessions kept (one per target key)
};

// The upstream rows of the configuration (--upstream-ca) as settings; one per worker is built
// from them.
ClientSettings client_settings(const config::Config& cfg);
// One upstream's own "tls" settings on top of those (its CA replaces --upstream-ca).
ClientSettings client_settings(const config::Config& cfg, const config::UpstreamTls& own);

class ClientContext {
 public:
  static std::unique_ptr<ClientContext> build(const ClientSettings& settings, std::string& error);
  ~ClientContext();
  ClientContext(const ClientContext&) = delete;
  ClientContext& operator=(const ClientContext&) = delete;

  SSL_CTX* ssl_ctx() const { return ctx_; }
  bool verify() const { return verify_; }

  // Session cache (used by Session). take() removes the entry: a TLS 1.3 ticket should be used
  // once (RFC 8446 C.4); the resumed connection stores the fresh ticket it receives. The caller
  // owns the returned reference (nullptr: none).
  SSL_SESSION* take(const std::string& key);
  void store(const std::string& key, SSL_SESSION* session);  // takes the reference
  size_t cached() const { return cache_.size(); }

 private:
  ClientContext() = default;
  SSL_CTX* ctx_ = nullptr;
  bool verify_ = true;
  size_t cache_cap_ = 256;
  std::list<std::string> order_;  // oldest first
  struct Entry {
    SSL_SESSION* session;
    std::list<std::string>::iterator pos;
  };
  std::unordered_map<std::string, Entry> cache_;
};

}  // namespace ringway::tls
