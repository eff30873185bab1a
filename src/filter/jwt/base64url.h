// Strict base64url (RFC 4648 5) as JWS uses it (RFC 7515 2): no padding, no whitespace, only the
// 64 URL-safe characters, and canonical trailing bits, so each value has exactly one encoding.
// Pure functions, any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ringway::filter::jwt {

// Decoded size for an input length, or SIZE_MAX if no valid encoding has that length.
inline size_t base64url_decoded_size(size_t n) {
  if (n % 4 == 1) return SIZE_MAX;
  return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

// Decodes into out (cap bytes). Returns the decoded length, or -1 on any deviation.
long base64url_decode(std::string_view in, uint8_t* out, size_t cap);

// Encoder, for key loading errors, tests and tools (allocates).
std::string base64url_encode(std::string_view bytes);

}  // namespace ringway::filter::jwt
