// Cache-Control (RFC 9111 5.2) parsed into one struct, for request and response directives alike.
// Pure functions over field values, any thread; the struct holds no views and may be copied into
// a stored entry.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringway/http/request.h"

namespace ringway::cache {

inline constexpr int64_t kAbsent = -1;
// RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31.
inline constexpr int64_t kDeltaSecondsMax = 2147483648;

struct CacheControl {
  // delta-seconds directives; kAbsent when the directive is not present.
  int64_t max_age = kAbsent;                 // 5.2.1.1 / 5.2.2.1
  int64_t s_maxage = kAbsent;                // 5.2.2.10 (response)
  int64_t max_stale = kAbsent;               // 5.2.1.2 (request); see max_stale_any
  int64_t min_fresh = kAbsent;               // 5.2.1.3 (request)
  int64_t stale_while_revalidate = kAbsent;  // RFC 5861 3 (response)
  int64_t stale_if_error = kAbsent;          // RFC 5861 4 (request or response)
  bool max_stale_any = false;   // "max-stale" without a value: any staleness is acceptable
  bool no_store = false;
  bool no_cache = false;        // qualified form (no-cache="field") is treated as unqualified:
                                // always revalidating is what 5.2.2.4 allows a cache to do
  bool private_ = false;        // qualified or not: a shared cache stores neither (5.2.2.7)
  bool public_ = false;
  bool must_revalidate = false;
  bool proxy_revalidate = false;
  bool must_understand = false;
  bool only_if_cached = false;
  bool no_transform = false;
  bool immutable = false;       // RFC 8246; noted, not acted upon
  bool present = false;         // at least one Cache-Control field line was seen
};

// Adds the directives of one Cache-Control field value to cc. Names are case-insensitive,
// whitespace around commas and '=' is tolerated, values may be quoted (5.2: recipients accept
// the quoted form), unknown directives are ignored (5.2.3). For a repeated directive the first
// occurrence wins; an invalid delta-seconds (max-age=abc) reads as 0, i.e. stale, as 4.2.1
// encourages.
void parse_cache_control(std::string_view value, CacheControl& cc);

// All Cache-Control field lines of a head combined (RFC 9110 5.3).
CacheControl cache_control_of(const http::Header* headers, uint16_t count);

}  // namespace ringway::cache
