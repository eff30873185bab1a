// Small JSON text helpers shared by the agg module (private to src/agg): escaping gateway-made
// strings and checking scalar tokens that simdjson on-demand hands over without validating.
#pragma once

#include <string>
#include <string_view>

#include "ringway/core/json_escape.h"

namespace ringway::agg::json_text {

// Escaping is core::append_json_escaped (core/json_escape.h); this returns it as a string.
inline std::string escaped(std::string_view s) {
  std::string out;
  core::append_json_escaped(out, s);
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
