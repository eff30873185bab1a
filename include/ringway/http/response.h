// A parsed upstream response head: string_views into the upstream connection's input buffer,
// valid until that buffer is released. Filled by http::ResponseParser. One worker owns it.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringway/http/request.h"

namespace ringway::http {

enum class ResponseFraming : uint8_t {
  kNone,        // no body: HEAD request, 1xx, 204, 304, or Content-Length: 0
  kLength,      // Content-Length
  kChunked,     // Transfer-Encoding: chunked
  kUntilClose,  // neither: body runs until the upstream closes (RFC 9112 6.3 rule 8)
};

struct Response {
  uint16_t status = 0;
  std::string_view reason;
  uint8_t version_minor = 1;
  ResponseFraming framing = ResponseFraming::kNone;
  uint64_t content_length = 0;  // valid when framing == kLength
  bool keep_alive = true;       // upstream connection may be reused after this response

  std::string_view connection_tokens[Request::kMaxConnectionTokens];
  uint8_t connection_token_count = 0;

  HeaderArray headers;
  uint16_t header_count = 0;
  uint32_t head_bytes = 0;

  std::string_view header(std::string_view name, bool* found = nullptr) const;
};

}  // namespace ringway::http
