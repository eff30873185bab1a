#include "ringway/core/json_escape.h"

#include <cstdint>

namespace ringway::core {

namespace {

constexpr char kHex[] = "0123456789abcdef";

char* write_u00(char* out, unsigned char c) {
  *out++ = '\\';
  *out++ = 'u';
  *out++ = '0';
  *out++ = '0';
  *out++ = kHex[c >> 4];
  *out++ = kHex[c & 0xf];
  return out;
}

// Length of the well-formed UTF-8 sequence starting at p (RFC 3629 section 4 syntax: no overlong
// forms, no surrogates, nothing above U+10FFFF), or 0 when p[0] does not start one.
size_t utf8_sequence_length(const unsigned char* p, size_t avail) {
  const unsigned char c = p[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // allowed range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (avail < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t i = 2; i < n; ++i) {
    if (p[i] < 0x80 || p[i] > 0xbf) return 0;
  }
  return n;
}

}  // namespace

size_t write_json_escaped_unit(const unsigned char* p, size_t avail, char* out, size_t* consumed) {
  const unsigned char c = *p;
  *consumed = 1;
  if (c >= 0x20 && c < 0x7f) {
    if (c != '"' && c != '\\') {
      out[0] = static_cast<char>(c);
      return 1;
    }
    out[0] = '\\';
    out[1] = static_cast<char>(c);
    return 2;
  }
  if (c < 0x80) {  // control bytes and DEL (RFC 8259 section 7 requires < 0x20 escaped)
    char short_form = 0;
    switch (c) {
      case '\n': short_form = 'n'; break;
      case '\r': short_form = 'r'; break;
      case '\t': short_form = 't'; break;
      case '\b': short_form = 'b'; break;
      case '\f': short_form = 'f'; break;
      default: return static_cast<size_t>(write_u00(out, c) - out);
    }
    out[0] = '\\';
    out[1] = short_form;
    return 2;
  }
  const size_t n = utf8_sequence_length(p, avail);
  if (n == 0) {
    // A stray byte cannot be represented in JSON as itself; keep it visible as its value.
    return static_cast<size_t>(write_u00(out, c) - out);
  }
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(p[i]);
  *consumed = n;
  return n;
}

char* write_json_escaped(char* out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {  // the common case, inline
      *out++ = static_cast<char>(c);
      ++p;
      continue;
    }
    size_t used = 0;
    out += write_json_escaped_unit(p, static_cast<size_t>(end - p), out, &used);
    p += used;
  }
  return out;
}

void append_json_escaped(std::string& out, std::string_view s) {
  const size_t old = out.size();
  out.resize(old + json_escaped_max(s.size()));
  char* end = write_json_escaped(out.data() + old, s);
  out.resize(static_cast<size_t>(end - out.data()));
}

void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  append_json_escaped(out, s);
  out += '"';
}

}  // namespace ringway::core
