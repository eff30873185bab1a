// HTTP-date (RFC 9110 5.6.7) parsing and formatting for the cache: Date, Expires, Last-Modified,
// If-Modified-Since. Pure functions over text, any thread; times are whole seconds since the
// Unix epoch (UTC), which is the resolution HTTP dates have.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace ringway::cache {

inline constexpr size_t kHttpDateLen = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// Parses IMF-fixdate and the two obsolete forms (rfc850-date, asctime-date), as RFC 9110 5.6.7
// requires of recipients. A two-digit rfc850 year that would be more than 50 years after
// now_unix is read as the most recent past year with those digits. nullopt if not a valid date.
std::optional<int64_t> parse_http_date(std::string_view s, int64_t now_unix);

// Writes t as IMF-fixdate into out (exactly kHttpDateLen bytes, no terminator).
void format_http_date(int64_t t, char* out);

}  // namespace ringway::cache
