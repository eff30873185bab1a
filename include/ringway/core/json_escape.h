// JSON string escaping (RFC 8259 section 7), the one copy in the tree: the access log, problem+json
// details, aggregate merges and the config loader all use it. Stateless and thread-safe. Output is always valid UTF-8 JSON: control bytes, DEL and bytes that are not part
// of a well-formed UTF-8 sequence are written as \u00XX; well-formed UTF-8 passes through.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ringway::core {

// Worst case escaped size of n input bytes (every byte as \u00XX), without the quotes.
constexpr size_t json_escaped_max(size_t n) { return n * 6; }

// Writes the escaped form of s (without quotes) at out, which must have room for
// json_escaped_max(s.size()) bytes. Returns one past the last byte written.
char* write_json_escaped(char* out, std::string_view s);

// Appends "s" (quoted and escaped) to out.
void append_json_string(std::string& out, std::string_view s);
// Appends the escaped form of s without quotes.
void append_json_escaped(std::string& out, std::string_view s);

// One escape unit: the byte or well-formed UTF-8 sequence at p (avail bytes left), written at out
// (room for 6 bytes). Sets *consumed; returns the bytes written. Lets a bounded writer stop
// between units, never inside one.
size_t write_json_escaped_unit(const unsigned char* p, size_t avail, char* out, size_t* consumed);

}  // namespace ringway::core
