#include "config/values.h"

#include <limits>

namespace ringway::config::detail {
namespace {

// Leading decimal digits of text; false when there are none or the value overflows.
bool take_digits(std::string_view& text, uint64_t& out) {
  size_t i = 0;
  uint64_t v = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
    ++i;
  }
  if (i == 0) return false;
  out = v;
  text.remove_prefix(i);
  return true;
}


}  // namespace

bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t& out,
                 std::string& error) {
  std::string_view rest = text;
  uint64_t v = 0;
  if (!take_digits(rest, v) || !rest.empty()) {
    error = "invalid number '" + std::string(text) + "'";
    return false;
  }
  if (v < min || v > max) {
    error = "value " + std::string(text) + " out of range [" + std::to_string(min) + ", " +
            std::to_string(max) + "]";
    return false;
  }
  out = v;
  return true;
}

bool parse_size(std::string_view text, uint64_t max, uint64_t& out, std::string& error) {
  std::string_view rest = text;
  uint64_t v = 0;
  if (!take_digits(rest, v)) {
    error = "invalid size '" + std::string(text) + "' (expected e.g. 512, 8k, 64m, 1g)";
    return false;
  }
  unsigned shift = 0;
  if (rest.size() == 1) {
    switch (core::to_lower(rest[0])) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      default: rest = "?"; break;
    }
    if (shift != 0) rest = {};
  }
  if (!rest.empty()) {
    error = "invalid size '" + std::string(text) + "' (expected e.g. 512, 8k, 64m, 1g)";
    return false;
  }
  if (shift != 0 && v > (std::numeric_limits<uint64_t>::max() >> shift)) {
    error = "size '" + std::string(text) + "' too large";
    return false;
  }
  v <<= shift;
  if (v == 0) {
    error = "size must be greater than 0";
    return false;
  }
  if (v > max) {
    error = "size '" + std::string(text) + "' too large (max " + std::to_string(max) + " bytes)";
    return false;
  }
  out = v;
  return true;
}

bool parse_duration_ms(std::string_view text, uint32_t& out, std::string& error) {
  std::string_view rest = text;
  uint64_t v = 0;
  const std::string bad =
      "invalid duration '" + std::string(text) + "' (expected e.g. 500ms, 10s, 2m, 1h)";
  if (!take_digits(rest, v)) {
    error = bad;
    return false;
  }
  uint64_t mult = 0;
  if (rest.empty() || rest == "s") {
    mult = 1000;  // a bare integer is seconds
  } else if (rest == "ms") {
    mult = 1;
  } else if (rest == "m") {
    mult = 60'000;
  } else if (rest == "h") {
    mult = 3'600'000;
  } else {
    error = bad;
    return false;
  }
  if (v == 0) {
    error = "duration must be greater than 0";
    return false;
  }
  if (v > std::numeric_limits<uint32_t>::max() / mult) {
    error = "duration '" + std::string(text) + "' too large";
    return false;
  }
  out = static_cast<uint32_t>(v * mult);
  return true;
}

bool parse_bool(std::string_view text, bool& out, std::string& error) {
  if (text == "true" || text == "1" || text == "yes" || text == "on") {
    out = true;
    return true;
  }
  if (text == "false" || text == "0" || text == "no" || text == "off") {
    out = false;
    return true;
  }
  error = "expected true or false, got '" + std::string(text) + "'";
  return false;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    // tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|"
    //       / "~" / DIGIT / ALPHA   (RFC 9110 5.6.2)
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '!' || c == '#' || c == '$' || c == '%' || c == '&' || c == '\'' ||
                    c == '*' || c == '+' || c == '-' || c == '.' || c == '^' || c == '_' ||
                    c == '`' || c == '|' || c == '~';
    if (!ok) return false;
  }
  return true;
}

}  // namespace ringway::config::detail
