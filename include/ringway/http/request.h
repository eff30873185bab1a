// A parsed HTTP/1.1 request head: string_views into the connection's input buffer, valid until
// that buffer is released (the end of the exchange). Filled by http::RequestParser; read by the
// router, the filters and the head serializer. Owned by one worker; never shared.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringway/core/ascii.h"

namespace ringway::http {

inline constexpr uint16_t kMaxHeaders = 128;  // hard cap; --max-header-count is <= this

struct Header {
  std::string_view name;   // as received (case preserved); compare with iequals()
  std::string_view value;  // leading/trailing OWS trimmed
};

// The field views of a head, kMaxHeaders of them, left uninitialized: only the first header_count
// are ever read, and zeroing all 128 (4 KiB) on every parse was measurable work per request.
// Indexes and decays to Header* like the array it replaces.
struct HeaderArray {
  HeaderArray() {}  // NOLINT: deliberately no initialization
  operator Header*() { return items; }
  operator const Header*() const { return items; }
  union {
    Header items[kMaxHeaders];
  };
};

enum class Method : uint8_t { kGet, kHead, kPost, kPut, kDelete, kConnect, kOptions, kTrace, kPatch, kOther };

enum class BodyFraming : uint8_t {
  kNone,     // no body (no Content-Length, no Transfer-Encoding)
  kLength,   // Content-Length: content_length bytes
  kChunked,  // Transfer-Encoding: chunked (final coding)
};

struct Request {
  Method method = Method::kOther;
  std::string_view method_name;  // e.g. "GET", "PROPFIND"
  std::string_view target;       // request-target exactly as received (origin-, absolute- or
                                 // asterisk-form)
  std::string_view path;         // target up to '?' (or '#')
  std::string_view query;        // after '?', without it; empty when has_query is false
  bool has_query = false;
  // "OPTIONS * HTTP/1.1" (RFC 9112 3.2.4): a question about the server itself, not a resource;
  // target and path are "*". Only OPTIONS may use it; the parser rejects any other method.
  bool asterisk_form = false;
  // HTTP/1.<minor>: 0 or 1. Major is always 1 after parsing; a higher 1.x minor is read as 1
  // (RFC 9110 2.5: handle it as the highest minor version we implement).
  uint8_t version_minor = 1;
  std::string_view host;         // value of the single Host field (empty if HTTP/1.0 without Host)

  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;   // valid when framing == kLength
  bool keep_alive = true;        // from version + Connection
  bool expect_continue = false;  // Expect: 100-continue

  // Field names listed in Connection (hop-by-hop by nomination, RFC 9110 7.6.1), besides
  // "close"/"keep-alive". Views into the Connection values.
  static constexpr uint8_t kMaxConnectionTokens = 16;
  std::string_view connection_tokens[kMaxConnectionTokens];
  uint8_t connection_token_count = 0;

  HeaderArray headers;
  uint16_t header_count = 0;
  uint32_t head_bytes = 0;       // bytes of the head including the final CRLFCRLF

  // First value of the header named `name` (case-insensitive), or empty with found=false.
  std::string_view header(std::string_view name, bool* found = nullptr) const;
};

// ASCII case-insensitive equality, for field names.
using core::iequals;  // field names compare case-insensitively (RFC 9110 5.1)

// Method enum from its name; kOther for extension methods.
Method method_from_name(std::string_view name);

// Idempotent per RFC 9110 9.2.2 (safe to retry on a fresh connection).
bool is_idempotent(Method m);

}  // namespace ringway::http
