// Private to src/config: parsers for the scalar value syntaxes shared by flags and the JSON file
// (sizes "64m", durations "10s", counts, header names). Pure functions, any thread; errors are
// returned as text without the flag/key name, which the caller prepends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "ringway/core/ascii.h"

namespace ringway::config::detail {

// Bytes with an optional k/m/g suffix (powers of 1024, case-insensitive): "512", "8k", "64m".
bool parse_size(std::string_view text, uint64_t max, uint64_t& out, std::string& error);

// Milliseconds from "500ms", "10s", "2m", "1h" or a bare integer (seconds).
bool parse_duration_ms(std::string_view text, uint32_t& out, std::string& error);

// Plain decimal integer in [min, max].
bool parse_count(std::string_view text, uint64_t min, uint64_t max, uint64_t& out, std::string& error);

// "true"/"false" (also "1"/"0", "yes"/"no", "on"/"off").
bool parse_bool(std::string_view text, bool& out, std::string& error);

// RFC 9110 5.6.2 token.
bool is_token(std::string_view s);

// The core helpers under the names the config code uses (core/ascii.h holds the one copy).
inline constexpr auto& ascii_iequals = core::iequals;
using core::ascii_lower;

}  // namespace ringway::config::detail
