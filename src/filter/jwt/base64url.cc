#include "filter/jwt/base64url.h"

#include <array>

namespace ringway::filter::jwt {
namespace {

constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

long base64url_decode(std::string_view in, uint8_t* out, size_t cap) {
  size_t need = base64url_decoded_size(in.size());
  if (need == SIZE_MAX || need > cap) return -1;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size(), o = 0, i = 0;
  for (; i + 4 <= n; i += 4) {
    int a = kTable[p[i]], b = kTable[p[i + 1]], c = kTable[p[i + 2]], d = kTable[p[i + 3]];
    if ((a | b | c | d) < 0) return -1;
    uint32_t v = (uint32_t(a) << 18) | (uint32_t(b) << 12) | (uint32_t(c) << 6) | uint32_t(d);
    out[o++] = uint8_t(v >> 16);
    out[o++] = uint8_t(v >> 8);
    out[o++] = uint8_t(v);
  }
  size_t rest = n - i;
  if (rest == 2) {
    int a = kTable[p[i]], b = kTable[p[i + 1]];
    // The last character carries 4 unused bits; they must be zero (RFC 4648 3.5) or two
    // different strings would decode to the same bytes.
    if ((a | b) < 0 || (b & 0x0f) != 0) return -1;
    out[o++] = uint8_t((a << 2) | (b >> 4));
  } else if (rest == 3) {
    int a = kTable[p[i]], b = kTable[p[i + 1]], c = kTable[p[i + 2]];
    if ((a | b | c) < 0 || (c & 0x03) != 0) return -1;
    out[o++] = uint8_t((a << 2) | (b >> 4));
    out[o++] = uint8_t(((b & 0x0f) << 4) | (c >> 2));
  }
  return static_cast<long>(o);
}

std::string base64url_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  size_t i = 0, n = bytes.size();
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = uint32_t(p[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

}  // namespace ringway::filter::jwt
