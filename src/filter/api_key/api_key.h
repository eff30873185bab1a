// API-key authentication: a client presents a key in a header (default X-API-Key) or a query
// parameter; the gateway knows only SHA-256 digests of the keys and compares in constant time.
// KeyStore is built once at start-up and shared read-only by all workers; an Authenticator (and
// the filter made by ApiKeyFilterFactory) belongs to one worker (it reuses an EVP_MD_CTX).
// Keys are never logged and never kept in clear text after KeyStore::build().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/types.h>

#include "ringway/filter/filter.h"

namespace ringway::filter::api_key {

inline constexpr size_t kMaxKeyBytes = 512;  // longer presented keys are rejected unhashed

// One configured consumer: `--api-key NAME=KEY` or a line of `--api-keys-file`.
struct Entry {
  std::string name;  // consumer name, forwarded as X-Consumer; [A-Za-z0-9._~-]+
  std::string key;   // the secret; any printable ASCII except space, 1..kMaxKeyBytes bytes
};

struct ApiKeyConfig {
  std::vector<Entry> keys;
  std::string header = "X-API-Key";        // "" disables header lookup
  std::string query_param;                 // "" disables query lookup (e.g. "api_key")
  std::string consumer_header = "X-Consumer";
};

// Parses "NAME=KEY". False with a message that never contains the key.
bool parse_entry(std::string_view text, Entry& out, std::string& error);
// Parses a keys file: one NAME=KEY per line; blank lines and lines starting with '#' ignored;
// CR before LF tolerated. Errors name the line number, never the key.
bool parse_keys_text(std::string_view text, std::vector<Entry>& out, std::string& error);
bool load_keys_file(const std::string& path, std::vector<Entry>& out, std::string& error);

class KeyStore {
 public:
  // Hashes every key; rejects duplicate names, duplicate keys and an empty key list.
  static std::shared_ptr<const KeyStore> build(const ApiKeyConfig& cfg, std::string& error);
  ~KeyStore();

  const std::string& header() const { return header_; }
  const std::string& query_param() const { return query_param_; }
  const std::string& consumer_header() const { return consumer_header_; }
  size_t size() const { return entries_.size(); }

  // The consumer whose digest equals `digest`, or null. Every entry is compared (CRYPTO_memcmp),
  // so the time taken does not depend on which entry matched.
  const std::string* find(const uint8_t (&digest)[32]) const;
  const EVP_MD* sha256() const { return sha256_; }

 private:
  KeyStore() = default;
  struct Hashed {
    uint8_t digest[32];
    std::string name;
  };
  std::vector<Hashed> entries_;
  std::string header_, query_param_, consumer_header_;
  EVP_MD* sha256_ = nullptr;
};

enum class Outcome : uint8_t {
  kOk,        // a configured key was presented
  kMissing,   // no key in the header nor the query
  kInvalid,   // a key was presented and matches nothing, or it is ambiguous (repeated)
};

// Per-worker: holds the digest context. Not thread-safe; one per worker.
class Authenticator {
 public:
  explicit Authenticator(std::shared_ptr<const KeyStore> store);
  ~Authenticator();
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Looks for the key; on kOk *consumer points into the KeyStore (lives as long as it).
  Outcome authenticate(const http::Request& req, const std::string* *consumer);
  // On success: removes the key header and any client-supplied consumer header from the
  // forwarded request, then adds the consumer header. False if the edit list is full.
  bool apply(RequestContext& ctx, const std::string& consumer) const;
  // Fills ctx.reply with the 401 for a failed outcome.
  static void reject(RequestContext& ctx, Outcome outcome);

  const KeyStore& store() const { return *store_; }

 private:
  std::shared_ptr<const KeyStore> store_;
  EVP_MD_CTX* md_ctx_ = nullptr;
};

// Requires a valid key on every request it sees (per-route selection is done by the combined
// auth filter in jwt/jwt.h; this factory is for chains where every route needs a key).
class ApiKeyFilterFactory final : public FilterFactory {
 public:
  explicit ApiKeyFilterFactory(std::shared_ptr<const KeyStore> store) : store_(std::move(store)) {}
  std::unique_ptr<Filter> create(unsigned worker_index, unsigned worker_count) const override;

 private:
  std::shared_ptr<const KeyStore> store_;
};

}  // namespace ringway::filter::api_key
