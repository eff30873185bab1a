// RFC 9111 shared-cache rules as pure functions over parsed heads (http::Request/Response views)
// and the facts the store keeps per entry: whether a response may be stored, how fresh it is,
// whether a stored one may answer a request, conditional requests, Vary, 304 updates,
// invalidation, Cache-Status. No I/O, no clock reads (callers pass the time), any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ringway/cache/cache_control.h"
#include "ringway/http/request.h"
#include "ringway/http/response.h"

namespace ringway::cache {

// Per-route settings (the "cache" config object, minus the size which the store owns).
struct Options {
  // Freshness given to a response with no explicit expiration time whose status is heuristically
  // cacheable (RFC 9111 4.2.2). 0 = heuristic freshness off, the default.
  int64_t default_ttl = 0;
  // A cap on any freshness lifetime (0 = none): keeps a mistaken max-age=31536000 from pinning an
  // object for a year.
  int64_t max_ttl = 0;
  // Responses to requests carrying Authorization: false = never stored; true = stored when
  // RFC 9111 3.5 allows it (public, s-maxage or must-revalidate in the response).
  bool allow_authorized = true;
};

// What the store remembers about a stored response, computed once from its fields. Views point
// into the stored head.
struct ResponseFacts {
  uint16_t status = 0;
  CacheControl cc;
  int64_t date = kAbsent;           // Date, seconds since the epoch
  int64_t expires = kAbsent;        // Expires; an invalid value reads as the epoch (5.3: past)
  bool has_expires = false;
  int64_t age_value = 0;            // Age (5.1); 0 if absent or invalid
  int64_t last_modified = kAbsent;
  std::string_view etag;            // entity-tag as received, W/ prefix included; "" if none
  bool vary_star = false;           // Vary: * (4.1: never matches, so never stored)
};

// Facts from a response head. now_unix only resolves two-digit years of obsolete dates.
ResponseFacts response_facts(const http::Header* headers, uint16_t count, uint16_t status,
                             int64_t now_unix);

enum class Storable : uint8_t {
  kYes,
  kMethod,         // 3: only GET responses are stored (HEAD is answered from them)
  kStatus,         // 3: final status whose caching rules this cache implements
  kNoStore,        // 3 / 5.2.1.5 / 5.2.2.5: no-store in request or response
  kPrivate,        // 5.2.2.7: private, for a shared cache
  kAuthorization,  // 3.5
  kNoFreshness,    // 3: none of public, max-age, s-maxage, Expires, heuristic
  kVaryStar,       // 4.1: Vary: * can never be matched
  kPartial,        // 206 / Content-Range: ranges are not stored
};
std::string_view storable_name(Storable s);

// RFC 9111 3 (and 3.5, 4.1) for a shared cache.
Storable storability(const http::Request& req, const CacheControl& req_cc,
                     const http::Response& resp, const ResponseFacts& facts, const Options& opt);

// RFC 9111 4.2.1 (shared cache): s-maxage, else max-age, else Expires - Date, else the heuristic
// default_ttl for heuristically cacheable statuses (4.2.2), else 0; capped by max_ttl.
// response_time stands in for a missing Date (RFC 9110 6.6.1).
int64_t freshness_lifetime(const ResponseFacts& f, int64_t response_time, const Options& opt);

// RFC 9111 4.2.3: current_age from the Age and Date fields and the times (seconds since the
// epoch) at which the request was sent and the response received.
int64_t current_age(const ResponseFacts& f, int64_t request_time, int64_t response_time,
                    int64_t now);

// Request directives that matter for reuse: Cache-Control plus Pragma: no-cache, which counts
// only when the request has no Cache-Control (5.4).
struct RequestDirectives {
  CacheControl cc;
  bool no_cache = false;  // cc.no_cache or Pragma: no-cache
};
RequestDirectives request_directives(const http::Request& req);

enum class Reuse : uint8_t {
  kFresh,       // serve the stored response (4.2)
  kStale,       // serve it although stale: the client allows it with max-stale (4.2.4 / 5.2.1.2)
  kStaleWhileRevalidate,  // serve it stale now and refresh it once in the background (RFC 5861 3)
  kRevalidate,  // ask the upstream (conditionally, 4.3.1) before answering
};
struct ReuseDecision {
  Reuse action = Reuse::kRevalidate;
  int64_t age = 0;
  int64_t ttl = 0;  // lifetime - age: negative once stale (the Cache-Status ttl, RFC 9211 2.5)
};

// Whether generating a stale response is forbidden by the response (4.2.4): no-cache,
// must-revalidate, proxy-revalidate, or s-maxage (which implies proxy-revalidate, 5.2.2.10).
bool stale_forbidden(const CacheControl& resp_cc);

// RFC 9111 4 + 5.2.1 + RFC 5861 3: may a stored response (lifetime, age) answer this request?
ReuseDecision decide_reuse(const ResponseFacts& f, int64_t lifetime, int64_t age,
                           const RequestDirectives& req);

// RFC 5861 4: the upstream failed (no response, or 500/502/503/504): may the stale response be
// served instead? Either side's stale-if-error counts; stale_forbidden() wins over both.
bool stale_if_error_allows(const ResponseFacts& f, int64_t lifetime, int64_t age,
                           const RequestDirectives& req);
// The statuses RFC 5861 4 counts as an error.
bool is_error_status(uint16_t status);

// ---- Vary (4.1) ----
// The secondary key of a response stored for req: for each field named in the response's Vary
// lines, in order, "name:value\n" with the name lower-cased and the request's field lines of that
// name combined with ", " (RFC 9110 5.3). "" when there is no Vary. False for Vary: *.
bool secondary_key(const http::Header* resp_headers, uint16_t resp_count, const http::Request& req,
                   std::string& out);
// Whether req selects a stored response whose secondary key is `stored` (no allocation).
bool secondary_key_matches(std::string_view stored, const http::Request& req);

// ---- Keys ----
// The primary key (4): scheme + authority + path + query; the scheme and host lower-cased and a
// default port dropped (RFC 9110 4.2.3). Method-independent: GET and HEAD share it.
std::string primary_key(std::string_view scheme, std::string_view authority, std::string_view path,
                        bool has_query, std::string_view query);
std::string primary_key(std::string_view scheme, const http::Request& req);

// 4.4: after an unsafe request answered with a non-error status, the keys to invalidate: the
// target, and Location / Content-Location when they name the same origin. Empty otherwise.
std::vector<std::string> invalidation_keys(std::string_view scheme, const http::Request& req,
                                           const http::Response& resp);
bool is_safe(http::Method m);

// ---- Conditional requests ----
// RFC 9110 8.8.3.2: weak comparison (opaque-tags equal, W/ ignored). Entity-tags as received.
bool weak_etag_match(std::string_view a, std::string_view b);
// If-None-Match list (RFC 9110 13.1.2) against a stored entity-tag: "*" or any weak match.
bool if_none_match_matches(std::string_view if_none_match, std::string_view etag);

enum class ClientConditional : uint8_t {
  kNone,         // no If-None-Match / If-Modified-Since: send the full response
  kNotModified,  // the stored response satisfies the condition: send 304 (4.3.2)
  kFailed,       // a condition was given and is false: send the full response
};
// 4.3.2 for GET/HEAD: If-None-Match by weak comparison; otherwise If-Modified-Since against
// Last-Modified, else Date, else response_time. If-None-Match present makes If-Modified-Since
// ignored (RFC 9110 13.1.3). An invalid If-Modified-Since date is ignored.
ClientConditional evaluate_conditional(const http::Request& req, const ResponseFacts& f,
                                       int64_t response_time, int64_t now_unix);

// Fields a 304 carries from the stored response (RFC 9110 15.4.5): Content-Location, Date,
// ETag, Vary, Cache-Control, Expires.
bool sent_in_304(std::string_view field_name);

// 4.3.1: the validators for a revalidation request: If-None-Match with the stored entity-tag,
// If-Modified-Since with the stored Last-Modified (views into the stored head; "" = omit).
struct Validators {
  std::string_view if_none_match;
  std::string_view if_modified_since;
};
Validators revalidation_validators(const http::Header* stored, uint16_t count);

// 4.3.4: does a 304 select this stored response for update? By strong validator, else weak,
// else (no validator on either side) yes.
bool not_modified_selects(const ResponseFacts& stored, const http::Response& not_modified);

// 3.2 / 4.3.4: the header fields of the stored response updated from a 304: every field of the
// 304 replaces the stored lines of that name, except hop-by-hop and Connection-named fields and
// Content-Length (3.2), plus the framing fields that describe the stored body. Views point into
// the two inputs.
std::vector<http::Header> updated_headers(const http::Header* stored, uint16_t stored_count,
                                          const http::Response& not_modified);

// Whether a response field is kept in storage (3.1): not hop-by-hop, not named by Connection.
bool stored_field(std::string_view name, const http::Response& resp);

// ---- Cache-Status (RFC 9211) ----
enum class Forward : uint8_t { kNone, kUriMiss, kVaryMiss, kMiss, kRequest, kStale, kBypass, kMethod };
struct CacheStatus {
  bool hit = false;
  Forward fwd = Forward::kNone;
  uint16_t fwd_status = 0;   // 0 = omit
  bool stored = false;
  bool collapsed = false;
  bool has_ttl = false;
  int64_t ttl = 0;
  std::string_view detail;   // "" = omit; written as a token when it is one, else a string
};
// Writes "<name>; hit; ttl=N" or "<name>; fwd=miss; fwd-status=200; stored" ... into out.
// Returns the length, 0 if cap is too small.
size_t format_cache_status(std::string_view cache_name, const CacheStatus& s, char* out,
                           size_t cap);

}  // namespace ringway::cache
