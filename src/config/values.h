// Private to src/config: parsers for the scalar value syntaxes shared by flags and the JSON file
// (sizes "64m", durations "10s", counts, header names). Pure functions, any thread; errors are
// returned as text without the flag/key name, which the caller prepends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

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

// ASCII case-insensitive equality (config keeps its own: it does not link the http module).
bool ascii_iequals(std::string_view a, std::string_view b);

std::string ascii_lower(std::string_view s);

}  // namespace ringway::config::detail
