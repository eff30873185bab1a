#include "agg/json_text.h"

#include <simdjson.h>

namespace ringway::agg::json_text {

namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

}  // namespace

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_ws(s[b])) ++b;
  while (e > b && is_ws(s[e - 1])) --e;
  return s.substr(b, e - b);
}

bool is_number(std::string_view t) {
  size_t i = 0, n = t.size();
  if (i < n && t[i] == '-') ++i;
  if (i >= n) return false;
  if (t[i] == '0') {
    ++i;
  } else if (t[i] >= '1' && t[i] <= '9') {
    while (i < n && is_digit(t[i])) ++i;
  } else {
    return false;
  }
  if (i < n && t[i] == '.') {
    ++i;
    if (i >= n || !is_digit(t[i])) return false;
    while (i < n && is_digit(t[i])) ++i;
  }
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '+' || t[i] == '-')) ++i;
    if (i >= n || !is_digit(t[i])) return false;
    while (i < n && is_digit(t[i])) ++i;
  }
  return i == n;
}

bool has_valid_escapes(std::string_view tok) {
  // Most strings are short: a plain loop beats a memchr call there.
  size_t i = 0;
  if (tok.size() <= 64) {
    while (i < tok.size() && tok[i] != '\\') ++i;
    if (i == tok.size()) return true;
  } else {
    i = tok.find('\\');
  }
  while (i != std::string_view::npos) {
    if (i + 1 >= tok.size()) return false;
    char e = tok[i + 1];
    switch (e) {
      case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        i += 2;
        break;
      case 'u':
        if (i + 6 > tok.size()) return false;
        for (size_t k = i + 2; k < i + 6; ++k)
          if (!is_hex(tok[k])) return false;
        i += 6;
        break;
      default:
        return false;
    }
    i = tok.find('\\', i);
  }
  return true;
}

}  // namespace ringway::agg::json_text
