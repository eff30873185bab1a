// Small JSON text helpers shared by the agg module (private to src/agg): escaping gateway-made
// strings and checking scalar tokens that simdjson on-demand hands over without validating.
#pragma once

#include <string>
#include <string_view>

namespace ringway::agg::json_text {

// Appends s as the inside of a JSON string (no quotes): '"', '\\' and C0 controls escaped
// (RFC 8259 section 7), everything else (UTF-8 included) copied. Invalid UTF-8 becomes U+FFFD so
// the output stays valid JSON whatever the input.
void append_escaped(std::string& out, std::string_view s);
inline std::string escaped(std::string_view s) {
  std::string out;
  append_escaped(out, s);
  return out;
}

// Strips JSON whitespace (RFC 8259 section 2) from both ends.
std::string_view trim(std::string_view s);

// Exact RFC 8259 section 6 number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool is_number(std::string_view tok);

// tok is a whole string token including quotes (UTF-8 and control bytes were already checked by
// simdjson stage 1); checks every backslash escape (section 7).
bool has_valid_escapes(std::string_view tok);

}  // namespace ringway::agg::json_text
