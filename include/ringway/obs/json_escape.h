// JSON string escaping shared by the access log and the demo upstreams. Stateless and
// thread-safe. Output is always valid UTF-8 JSON: control bytes, DEL and bytes that are not part
// of a well-formed UTF-8 sequence are written as \u00XX; well-formed UTF-8 passes through.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringway::obs {

// Worst case escaped size of n input bytes (every byte as \u00XX), without the quotes.
constexpr size_t json_escaped_max(size_t n) { return n * 6; }

// Writes the escaped form of s (without quotes) at out, which must have room for
// json_escaped_max(s.size()) bytes. Returns one past the last byte written.
char* write_json_escaped(char* out, std::string_view s);

// Appends "s" (quoted and escaped) to out.
void append_json_string(std::string& out, std::string_view s);

}  // namespace ringway::obs
