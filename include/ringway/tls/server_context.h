// TLS termination settings compiled into OpenSSL contexts: one ServerContext per configuration
// (or per certificate reload), immutable once built and shared read-only by every worker thread
// (SSL_CTX is safe for concurrent SSL_new/handshakes). Lifetime: each Session's SSL holds a
// reference on its SSL_CTX, and the default SSL_CTX owns the SNI table and the ticket keys through
// ex_data, so the owner may swap in a new ServerContext and drop the old one while connections made
// from it are still open.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/tls/ticket_keys.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace ringway::config {
struct Config;
}

namespace ringway::tls {

enum class Version : uint8_t { kTls12, kTls13 };
enum class ClientAuth : uint8_t { kNone, kOptional, kRequired };
// "none" | "optional" | "required" (the config's spelling); false for anything else.
bool client_auth_from_name(std::string_view name, ClientAuth& out);

struct CertKeyFiles {
  std::string cert;  // PEM: leaf first, then its chain
  std::string key;   // PEM private key (RSA or EC)
};

// Defaults (RFC 9325 4.2 recommendations, ECDHE only). TLS 1.2 list: forward secret AEAD only.
inline constexpr const char* kDefaultCiphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kDefaultCiphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
// ECDHE groups only (no finite-field DHE in TLS 1.3 either).
inline constexpr const char* kGroups = "X25519:P-256:P-384";

struct ServerSettings {
  std::vector<CertKeyFiles> certs;   // at least one; the first is the default (no/unknown SNI)
  Version min_version = Version::kTls12;
  std::string ciphers;               // TLS 1.2 list, "" = kDefaultCiphers; must be ECDHE only
  std::string ciphersuites;          // TLS 1.3 suites, "" = kDefaultCiphersuites
  std::string client_ca_file;        // required unless client_auth == kNone
  ClientAuth client_auth = ClientAuth::kNone;
  std::string ticket_key_file;       // "" = random keys rotated by ticket_keys()->rotate()
  uint32_t ticket_lifetime_s = 3600; // ticket lifetime hint; rotate the random keys this often
};

// The TLS rows of the configuration as settings (the caller owns the config).
ServerSettings server_settings(const config::Config& cfg);

class ServerContext {
 public:
  // Loads every certificate and key, checks the settings. nullptr with a one-line error naming
  // the file or setting; no secret is ever part of the text. `keys`: ticket keys to keep (a
  // reload without a ticket-key file passes the old context's, so issued tickets stay valid);
  // nullptr makes new ones.
  static std::shared_ptr<const ServerContext> build(const ServerSettings& settings,
                                                    std::string& error,
                                                    std::shared_ptr<TicketKeys> keys = nullptr);

  // SIGHUP: a new context from the same settings' files, keeping the old ticket keys unless a
  // ticket-key file is configured (then it is re-read). On failure returns nullptr and the
  // caller keeps using `old` (and logs error and counts it).
  static std::shared_ptr<const ServerContext> reload(const ServerContext& old,
                                                     const ServerSettings& settings,
                                                     std::string& error);

  ~ServerContext();
  ServerContext(const ServerContext&) = delete;
  ServerContext& operator=(const ServerContext&) = delete;

  // The context new server Sessions start from (SNI may move them to another one).
  SSL_CTX* ssl_ctx() const { return default_; }
  // Rotation hook for a timer on any one thread, every ticket_lifetime_s: a key then encrypts
  // for one interval and still decrypts for two more, so every ticket outlives its lifetime hint.
  const std::shared_ptr<TicketKeys>& ticket_keys() const { return keys_; }
  // Names (lower-case, "*.x" for wildcards) that select each certificate, in settings order.
  const std::vector<std::vector<std::string>>& names() const { return names_; }

 private:
  ServerContext() = default;
  SSL_CTX* default_ = nullptr;  // one reference
  std::shared_ptr<TicketKeys> keys_;
  std::vector<std::vector<std::string>> names_;
};

}  // namespace ringway::tls
