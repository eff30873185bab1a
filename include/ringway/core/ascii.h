// ASCII helpers for protocol text (field names, tokens, config keywords): locale-free and
// case-insensitive only over A-Z. Stateless, any thread. The one copy of each in the tree.
#pragma once

#include <string>
#include <string_view>

namespace ringway::core {

constexpr char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Case-insensitive equality over ASCII letters (RFC 9110 5.1: field names are case-insensitive).
constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i] && to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// Optional whitespace (RFC 9110 5.6.3): SP and HTAB.
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
  return s;
}

inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

}  // namespace ringway::core
