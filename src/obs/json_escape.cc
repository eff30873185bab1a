#include "ringway/obs/json_escape.h"

#include <cstdint>

namespace ringway::obs {

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

char* write_json_escaped(char* out, std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c >= 0x20 && c < 0x7f) {
      if (c == '"' || c == '\\') *out++ = '\\';
      *out++ = static_cast<char>(c);
      ++p;
      continue;
    }
    if (c < 0x80) {  // control bytes and DEL (RFC 8259 section 7 requires < 0x20 escaped)
      switch (c) {
        case '\n': *out++ = '\\'; *out++ = 'n'; break;
        case '\r': *out++ = '\\'; *out++ = 'r'; break;
        case '\t': *out++ = '\\'; *out++ = 't'; break;
        case '\b': *out++ = '\\'; *out++ = 'b'; break;
        case '\f': *out++ = '\\'; *out++ = 'f'; break;
        default: out = write_u00(out, c);
      }
      ++p;
      continue;
    }
    const size_t n = utf8_sequence_length(p, static_cast<size_t>(end - p));
    if (n == 0) {
      // A stray byte cannot be represented in JSON as itself; keep it visible as its value.
      out = write_u00(out, c);
      ++p;
    } else {
      for (size_t i = 0; i < n; ++i) *out++ = static_cast<char>(p[i]);
      p += n;
    }
  }
  return out;
}

void append_json_string(std::string& out, std::string_view s) {
  const size_t old = out.size();
  out.resize(old + json_escaped_max(s.size()) + 2);
  char* begin = out.data() + old;
  char* p = begin;
  *p++ = '"';
  p = write_json_escaped(p, s);
  *p++ = '"';
  out.resize(old + static_cast<size_t>(p - begin));
}

}  // namespace ringway::obs
