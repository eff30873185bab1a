#include "filter/api_key/api_key.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include "ringway/core/ascii.h"

namespace ringway::filter::api_key {
namespace {

bool valid_name(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (unsigned char c : n) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Visible ASCII only: a key must survive a header field value (RFC 9110 5.5) unchanged.
bool valid_key(std::string_view k) {
  if (k.empty() || k.size() > kMaxKeyBytes) return false;
  for (unsigned char c : k) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX-decodes src into out (RFC 3986 2.1). '+' is left as is: the query is not assumed to be
// form-encoded. Returns the decoded length, or -1 on a bad escape or overflow.
long percent_decode(std::string_view src, char* out, size_t cap) {
  size_t n = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    char c = src[i];
    if (c == '%') {
      if (i + 2 >= src.size()) return -1;
      int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
      if (hi < 0 || lo < 0) return -1;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (n == cap) return -1;
    out[n++] = c;
  }
  return static_cast<long>(n);
}

}  // namespace


bool parse_entry(std::string_view text, Entry& out, std::string& error) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    error = "expected NAME=KEY";
    return false;
  }
  std::string_view name = text.substr(0, eq), key = text.substr(eq + 1);
  if (!valid_name(name)) {
    error = "consumer name must be 1-128 characters of [A-Za-z0-9._~-]";
    return false;
  }
  if (!valid_key(key)) {
    error = "key for '" + std::string(name) +
            "' must be 1-512 visible ASCII characters (no spaces or control characters)";
    return false;
  }
  out.name = std::string(name);
  out.key = std::string(key);
  return true;
}

bool parse_keys_text(std::string_view text, std::vector<Entry>& out, std::string& error) {
  size_t line_no = 0;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    Entry e;
    std::string err;
    if (!parse_entry(line, e, err)) {
      error = "line " + std::to_string(line_no) + ": " + err;
      return false;
    }
    out.push_back(std::move(e));
  }
  return true;
}

bool load_keys_file(const std::string& path, std::vector<Entry>& out, std::string& error) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = path + ": cannot open";
    return false;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  std::string err;
  if (!parse_keys_text(ss.str(), out, err)) {
    error = path + ": " + err;
    return false;
  }
  return true;
}

KeyStore::~KeyStore() {
  EVP_MD_free(sha256_);
  for (auto& e : entries_) OPENSSL_cleanse(e.digest, sizeof e.digest);
}

std::shared_ptr<const KeyStore> KeyStore::build(const ApiKeyConfig& cfg, std::string& error) {
  if (cfg.keys.empty()) {
    error = "no API keys configured";
    return nullptr;
  }
  if (cfg.header.empty() && cfg.query_param.empty()) {
    error = "API keys need a header or a query parameter to be read from";
    return nullptr;
  }
  std::shared_ptr<KeyStore> s(new KeyStore());
  s->header_ = cfg.header;
  s->query_param_ = cfg.query_param;
  s->consumer_header_ = cfg.consumer_header;
  s->sha256_ = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (s->sha256_ == nullptr) {
    error = "OpenSSL: SHA256 unavailable";
    return nullptr;
  }
  for (const Entry& e : cfg.keys) {
    if (!valid_name(e.name) || !valid_key(e.key)) {
      error = "invalid API key entry for '" + e.name + "'";
      return nullptr;
    }
    Hashed h;
    unsigned int len = 0;
    if (EVP_Digest(e.key.data(), e.key.size(), h.digest, &len, s->sha256_, nullptr) != 1 ||
        len != 32) {
      error = "OpenSSL: SHA256 failed";
      return nullptr;
    }
    for (const Hashed& o : s->entries_) {
      if (o.name == e.name) {
        error = "duplicate API key consumer name '" + e.name + "'";
        return nullptr;
      }
      if (std::memcmp(o.digest, h.digest, 32) == 0) {
        error = "consumers '" + o.name + "' and '" + e.name + "' have the same key";
        return nullptr;
      }
    }
    h.name = e.name;
    s->entries_.push_back(std::move(h));
  }
  return s;
}

const std::string* KeyStore::find(const uint8_t (&digest)[32]) const {
  const std::string* found = nullptr;
  for (const Hashed& e : entries_) {
    // No early exit: every entry costs the same whether or not an earlier one matched.
    bool eq = CRYPTO_memcmp(e.digest, digest, 32) == 0;
    if (eq && found == nullptr) found = &e.name;
  }
  return found;
}

Authenticator::Authenticator(std::shared_ptr<const KeyStore> store)
    : store_(std::move(store)), md_ctx_(EVP_MD_CTX_new()) {}

Authenticator::~Authenticator() { EVP_MD_CTX_free(md_ctx_); }

Outcome Authenticator::authenticate(const http::Request& req, const std::string** consumer) {
  *consumer = nullptr;
  std::string_view presented;
  unsigned seen = 0;
  const KeyStore& s = *store_;
  if (!s.header().empty()) {
    for (uint16_t i = 0; i < req.header_count; ++i) {
      if (core::iequals(req.headers[i].name, s.header())) {
        presented = req.headers[i].value;
        ++seen;
      }
    }
  }
  char decoded[kMaxKeyBytes];
  if (!s.query_param().empty() && req.has_query) {
    std::string_view q = req.query;
    while (!q.empty()) {
      size_t amp = q.find('&');
      std::string_view pair = q.substr(0, amp);
      q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
      size_t eq = pair.find('=');
      std::string_view name = pair.substr(0, eq);
      if (name != s.query_param()) continue;
      ++seen;
      if (eq == std::string_view::npos) {
        presented = {};
        continue;
      }
      long n = percent_decode(pair.substr(eq + 1), decoded, sizeof decoded);
      if (n < 0) return Outcome::kInvalid;
      presented = std::string_view(decoded, static_cast<size_t>(n));
    }
  }
  if (seen == 0) return Outcome::kMissing;
  // Two keys (two headers, two parameters or one of each) are ambiguous: refuse rather than
  // guess which one the upstream would see.
  if (seen > 1 || presented.empty() || presented.size() > kMaxKeyBytes) return Outcome::kInvalid;

  uint8_t digest[32];
  unsigned int len = 0;
  if (EVP_DigestInit_ex(md_ctx_, s.sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(md_ctx_, presented.data(), presented.size()) != 1 ||
      EVP_DigestFinal_ex(md_ctx_, digest, &len) != 1 || len != 32) {
    return Outcome::kInvalid;
  }
  OPENSSL_cleanse(decoded, sizeof decoded);
  const std::string* name = s.find(digest);
  if (name == nullptr) return Outcome::kInvalid;
  *consumer = name;
  return Outcome::kOk;
}

bool Authenticator::apply(RequestContext& ctx, const std::string& consumer) const {
  const KeyStore& s = *store_;
  bool ok = true;
  // The key itself is a credential for the gateway, not for the upstream.
  if (!s.header().empty()) ok &= ctx.edits.push_remove(s.header());
  if (!s.query_param().empty()) ctx.edits.remove_query_param = s.query_param();
  if (!s.consumer_header().empty()) {
    ok &= ctx.edits.push_remove(s.consumer_header());
    ok &= ctx.edits.push_add(s.consumer_header(), consumer);
  }
  return ok;
}

void Authenticator::reject(RequestContext& ctx, Outcome outcome) {
  ctx.reply.status = 401;
  ctx.reply.detail = outcome == Outcome::kMissing ? "missing API key" : "invalid API key";
  // RFC 9110 11.6.1: a 401 carries at least one challenge. There is no registered scheme for
  // API keys; "ApiKey" names what is expected.
  ctx.reply.headers[0] = http::Header{"WWW-Authenticate", "ApiKey"};
  ctx.reply.header_count = 1;
}

namespace {

class ApiKeyFilter final : public Filter {
 public:
  explicit ApiKeyFilter(std::shared_ptr<const KeyStore> store) : auth_(std::move(store)) {}
  Verdict on_request(RequestContext& ctx) override {
    const std::string* consumer = nullptr;
    Outcome o = auth_.authenticate(ctx.request, &consumer);
    if (o != Outcome::kOk) {
      Authenticator::reject(ctx, o);
      return Verdict::kRespond;
    }
    if (!auth_.apply(ctx, *consumer)) {
      ctx.reply.status = 500;
      ctx.reply.detail = "too many header edits";
      return Verdict::kRespond;
    }
    return Verdict::kContinue;
  }

 private:
  Authenticator auth_;
};

}  // namespace

std::unique_ptr<Filter> ApiKeyFilterFactory::create(unsigned, unsigned) const {
  return std::make_unique<ApiKeyFilter>(store_);
}

}  // namespace ringway::filter::api_key
