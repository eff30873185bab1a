// RFC 9111 rules for a shared cache, one function per rule, with the section each implements.
// Where the RFC leaves a choice (MAY store, SHOULD revalidate) the comment says which was taken.
#include "ringway/cache/policy.h"

#include <algorithm>
#include <cstdio>

#include "ringway/cache/http_date.h"
#include "ringway/core/ascii.h"
#include "ringway/http/head_writer.h"

namespace ringway::cache {
namespace {

using core::iequals;

using core::is_ows;
constexpr auto& trim = core::trim_ows;

// Calls fn(element) for each non-empty element of a comma-separated list (RFC 9110 5.6.1).
template <typename Fn>
void for_each_element(std::string_view v, Fn&& fn) {
  while (!v.empty()) {
    const size_t comma = v.find(',');
    const std::string_view el = trim(v.substr(0, comma));
    if (!el.empty()) fn(el);
    if (comma == std::string_view::npos) break;
    v.remove_prefix(comma + 1);
  }
}

// RFC 9111 3 says "understood"; these are the final statuses whose caching semantics this cache
// implements. 206 is not among them: ranges are not stored.
bool status_understood(uint16_t s) {
  switch (s) {
    case 200: case 203: case 204: case 300: case 301: case 302: case 303: case 307: case 308:
    case 400: case 403: case 404: case 405: case 410: case 414: case 451:
    case 500: case 501: case 502: case 503: case 504:
      return true;
    default:
      return false;
  }
}

// RFC 9110 15.1: heuristically cacheable (206 excluded for the reason above).
bool heuristically_cacheable(uint16_t s) {
  switch (s) {
    case 200: case 203: case 204: case 300: case 301: case 308: case 404: case 405: case 410:
    case 414: case 501:
      return true;
    default:
      return false;
  }
}

bool has_field(const http::Header* h, uint16_t n, std::string_view name) {
  for (uint16_t i = 0; i < n; ++i) {
    if (iequals(h[i].name, name)) return true;
  }
  return false;
}

std::string_view first_field(const http::Header* h, uint16_t n, std::string_view name) {
  for (uint16_t i = 0; i < n; ++i) {
    if (iequals(h[i].name, name)) return h[i].value;
  }
  return {};
}

// Whether the request's field lines named `name`, combined with ", " (RFC 9110 5.3), equal
// `expected`; `present` says whether the request must have the field at all.
bool combined_equals(const http::Request& req, std::string_view name, bool present,
                     std::string_view expected) {
  bool seen = false;
  for (uint16_t i = 0; i < req.header_count; ++i) {
    const http::Header& h = req.headers[i];
    if (!iequals(h.name, name)) continue;
    if (seen) {
      if (expected.substr(0, 2) != ", ") return false;
      expected.remove_prefix(2);
    }
    seen = true;
    if (expected.substr(0, h.value.size()) != h.value) return false;
    expected.remove_prefix(h.value.size());
  }
  return seen == present && expected.empty();
}

int64_t parse_delta(std::string_view v) {
  v = trim(v);
  if (v.empty()) return kAbsent;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return kAbsent;
    n = std::min<int64_t>(n * 10 + (c - '0'), kDeltaSecondsMax);
  }
  return n;
}

// The opaque-tag of an entity-tag (quotes included) and whether it is weak.
std::string_view opaque_tag(std::string_view etag, bool* weak) {
  etag = trim(etag);
  *weak = etag.size() >= 2 && etag[0] == 'W' && etag[1] == '/';
  if (*weak) etag.remove_prefix(2);
  return etag;
}

std::string_view default_port(std::string_view scheme) {
  return iequals(scheme, "https") ? std::string_view(":443") : std::string_view(":80");
}

// Splits "host[:port]" (or "[v6]:port") off the front of an absolute URI's remainder.
struct UriParts {
  std::string_view authority, path, query;
  bool has_query = false;
};

void split_path_query(std::string_view pq, UriParts& u) {
  pq = pq.substr(0, pq.find('#'));
  const size_t q = pq.find('?');
  u.path = pq.substr(0, q);
  if (q != std::string_view::npos) {
    u.has_query = true;
    u.query = pq.substr(q + 1);
  }
}

}  // namespace

ResponseFacts response_facts(const http::Header* headers, uint16_t count, uint16_t status,
                             int64_t now_unix) {
  ResponseFacts f;
  f.status = status;
  f.cc = cache_control_of(headers, count);
  bool seen_date = false, seen_expires = false, seen_age = false, seen_lm = false;
  for (uint16_t i = 0; i < count; ++i) {
    const http::Header& h = headers[i];
    // 4.2.1: with several lines for one field the first is used.
    if (!seen_date && iequals(h.name, "date")) {
      seen_date = true;
      if (auto t = parse_http_date(h.value, now_unix)) f.date = *t;
    } else if (!seen_expires && iequals(h.name, "expires")) {
      seen_expires = true;
      f.has_expires = true;
      // 5.3: an invalid Expires ("0" included) is a time in the past.
      auto t = parse_http_date(h.value, now_unix);
      f.expires = t ? *t : 0;
    } else if (!seen_age && iequals(h.name, "age")) {
      seen_age = true;
      const int64_t a = parse_delta(h.value);
      f.age_value = a == kAbsent ? 0 : a;  // 5.1: an invalid Age is ignored
    } else if (!seen_lm && iequals(h.name, "last-modified")) {
      seen_lm = true;
      if (auto t = parse_http_date(h.value, now_unix)) f.last_modified = *t;
    } else if (f.etag.empty() && iequals(h.name, "etag")) {
      f.etag = h.value;
    } else if (iequals(h.name, "vary")) {
      for_each_element(h.value, [&](std::string_view el) {
        if (el == "*") f.vary_star = true;
      });
    }
  }
  return f;
}

std::string_view storable_name(Storable s) {
  switch (s) {
    case Storable::kYes: return "stored";
    case Storable::kMethod: return "method";
    case Storable::kStatus: return "status";
    case Storable::kNoStore: return "no-store";
    case Storable::kPrivate: return "private";
    case Storable::kAuthorization: return "authorization";
    case Storable::kNoFreshness: return "no-freshness";
    case Storable::kVaryStar: return "vary-star";
    case Storable::kPartial: return "partial";
  }
  return "?";
}

Storable storability(const http::Request& req, const CacheControl& req_cc,
                     const http::Response& resp, const ResponseFacts& facts, const Options& opt) {
  // 3: the request method is understood and cacheable. Only GET fills the cache; a HEAD is
  // answered from a stored GET (4.3.5 would only freshen, which the engine may do separately).
  if (req.method != http::Method::kGet) return Storable::kMethod;
  if (resp.status == 206 || has_field(resp.headers, resp.header_count, "content-range")) {
    return Storable::kPartial;
  }
  const bool understood = status_understood(resp.status);
  if (!understood) return Storable::kStatus;
  // 5.2.1.5: no-store in the request forbids storing the response to it.
  if (req_cc.no_store) return Storable::kNoStore;
  // 5.2.2.3: a cache that understands the status ignores no-store when must-understand is there.
  if (facts.cc.no_store && !facts.cc.must_understand) return Storable::kNoStore;
  if (facts.cc.private_) return Storable::kPrivate;  // 5.2.2.7
  if (has_field(req.headers, req.header_count, "authorization")) {
    // 3.5: a shared cache stores such a response only if public, s-maxage or must-revalidate.
    if (!opt.allow_authorized) return Storable::kAuthorization;
    if (!facts.cc.public_ && facts.cc.s_maxage == kAbsent && !facts.cc.must_revalidate) {
      return Storable::kAuthorization;
    }
  }
  if (facts.vary_star) return Storable::kVaryStar;  // 4.1: "*" always fails to match
  // 3: at least one of public, Expires, max-age, s-maxage, or a heuristically cacheable status.
  // The last only counts when heuristic freshness is on: storing a response that could never
  // be served without a round trip costs memory for nothing (3 says MAY store, not MUST).
  const bool explicit_freshness = facts.cc.public_ || facts.cc.max_age != kAbsent ||
                                  facts.cc.s_maxage != kAbsent || facts.has_expires;
  const bool heuristic = opt.default_ttl > 0 && heuristically_cacheable(resp.status);
  if (!explicit_freshness && !heuristic) return Storable::kNoFreshness;
  return Storable::kYes;
}

int64_t freshness_lifetime(const ResponseFacts& f, int64_t response_time, const Options& opt) {
  int64_t lifetime = 0;
  if (f.cc.s_maxage != kAbsent) {
    lifetime = f.cc.s_maxage;  // 4.2.1: shared caches use s-maxage first
  } else if (f.cc.max_age != kAbsent) {
    lifetime = f.cc.max_age;
  } else if (f.has_expires) {
    // 4.2.1: Expires minus Date; without Date the time the response was received (RFC 9110
    // 6.6.1 has the recipient add a Date).
    const int64_t date = f.date != kAbsent ? f.date : response_time;
    lifetime = std::max<int64_t>(0, f.expires - date);
  } else if (opt.default_ttl > 0 && heuristically_cacheable(f.status)) {
    lifetime = opt.default_ttl;  // 4.2.2 heuristic, only when configured
  }
  if (opt.max_ttl > 0) lifetime = std::min(lifetime, opt.max_ttl);
  return lifetime;
}

int64_t current_age(const ResponseFacts& f, int64_t request_time, int64_t response_time,
                    int64_t now) {
  // 4.2.3, written out as the RFC does.
  const int64_t date_value = f.date != kAbsent ? f.date : response_time;
  const int64_t apparent_age = std::max<int64_t>(0, response_time - date_value);
  const int64_t response_delay = std::max<int64_t>(0, response_time - request_time);
  const int64_t corrected_age_value = f.age_value + response_delay;
  const int64_t corrected_initial_age = std::max(apparent_age, corrected_age_value);
  const int64_t resident_time = std::max<int64_t>(0, now - response_time);
  return corrected_initial_age + resident_time;
}

RequestDirectives request_directives(const http::Request& req) {
  RequestDirectives d;
  d.cc = cache_control_of(req.headers, req.header_count);
  d.no_cache = d.cc.no_cache;
  if (!d.cc.present) {
    // 5.4: Pragma: no-cache means no-cache only when Cache-Control is absent.
    for (uint16_t i = 0; i < req.header_count; ++i) {
      if (!iequals(req.headers[i].name, "pragma")) continue;
      for_each_element(req.headers[i].value, [&](std::string_view el) {
        if (iequals(el, "no-cache")) d.no_cache = true;
      });
    }
  }
  return d;
}

bool stale_forbidden(const CacheControl& cc) {
  return cc.no_cache || cc.must_revalidate || cc.proxy_revalidate || cc.s_maxage != kAbsent;
}

ReuseDecision decide_reuse(const ResponseFacts& f, int64_t lifetime, int64_t age,
                           const RequestDirectives& req) {
  ReuseDecision d;
  d.age = age;
  d.ttl = lifetime - age;
  d.action = Reuse::kRevalidate;
  // 5.2.2.4: an unqualified no-cache response is never reused without validation.
  if (f.cc.no_cache) return d;
  // 5.2.1.4: nor for a request that says no-cache (or Pragma: no-cache, 5.4).
  if (req.no_cache) return d;
  // 5.2.1.1: the client does not want a response older than max-age. max-age=0 is read as
  // "revalidate" even at age 0, as clients sending it mean (and as other caches do).
  if (req.cc.max_age != kAbsent && (req.cc.max_age == 0 || age > req.cc.max_age)) return d;
  const bool fresh = lifetime > age;  // 4.2
  if (fresh) {
    // 5.2.1.3: min-fresh asks for at least that much freshness left.
    if (req.cc.min_fresh != kAbsent && lifetime - age < req.cc.min_fresh) return d;
    d.action = Reuse::kFresh;
    return d;
  }
  // Stale. 4.2.4: never served stale when the response forbids it.
  if (stale_forbidden(f.cc)) return d;
  const int64_t staleness = age - lifetime;
  if (req.cc.min_fresh != kAbsent) return d;  // a stale response has no freshness left
  // 5.2.1.2: the client accepts this much staleness.
  if (req.cc.max_stale_any || (req.cc.max_stale != kAbsent && staleness <= req.cc.max_stale)) {
    d.action = Reuse::kStale;
    return d;
  }
  // RFC 5861 3: within the stale-while-revalidate window, serve now and refresh in background.
  if (f.cc.stale_while_revalidate != kAbsent && staleness <= f.cc.stale_while_revalidate) {
    d.action = Reuse::kStaleWhileRevalidate;
  }
  return d;
}

bool is_error_status(uint16_t status) {
  return status == 500 || status == 502 || status == 503 || status == 504;
}

bool stale_if_error_allows(const ResponseFacts& f, int64_t lifetime, int64_t age,
                           const RequestDirectives& req) {
  const int64_t staleness = age - lifetime;
  if (staleness < 0) return !f.cc.no_cache;  // still fresh: servable unless always-revalidate
  // 5.2.2.2: a must-revalidate response is never served stale, even when disconnected; the same
  // for the other stale-forbidding directives (4.2.4).
  if (stale_forbidden(f.cc)) return false;
  if (f.cc.stale_if_error != kAbsent && staleness <= f.cc.stale_if_error) return true;
  if (req.cc.stale_if_error != kAbsent && staleness <= req.cc.stale_if_error) return true;
  return req.cc.max_stale_any || (req.cc.max_stale != kAbsent && staleness <= req.cc.max_stale);
}

bool secondary_key(const http::Header* resp_headers, uint16_t resp_count, const http::Request& req,
                   std::string& out) {
  out.clear();
  bool star = false;
  for (uint16_t i = 0; i < resp_count; ++i) {
    if (!iequals(resp_headers[i].name, "vary")) continue;
    for_each_element(resp_headers[i].value, [&](std::string_view name) {
      if (name == "*") {
        star = true;
        return;
      }
      for (char c : name) out.push_back(core::to_lower(c));
      bool seen = false;
      for (uint16_t k = 0; k < req.header_count; ++k) {
        const http::Header& h = req.headers[k];
        if (!iequals(h.name, name)) continue;
        out.append(seen ? ", " : ":");
        out.append(h.value);
        seen = true;
      }
      // An absent field matches only an absent field (4.1), not an empty one: no ':' for it.
      out.push_back('\n');
    });
  }
  return !star;
}

bool secondary_key_matches(std::string_view stored, const http::Request& req) {
  while (!stored.empty()) {
    const size_t nl = stored.find('\n');
    if (nl == std::string_view::npos) return false;
    const std::string_view line = stored.substr(0, nl);
    stored.remove_prefix(nl + 1);
    const size_t colon = line.find(':');
    const bool present = colon != std::string_view::npos;
    const std::string_view name = line.substr(0, colon);
    const std::string_view value = present ? line.substr(colon + 1) : std::string_view();
    if (!combined_equals(req, name, present, value)) return false;
  }
  return true;
}

std::string primary_key(std::string_view scheme, std::string_view authority, std::string_view path,
                        bool has_query, std::string_view query) {
  std::string key;
  key.reserve(scheme.size() + authority.size() + path.size() + query.size() + 5);
  for (char c : scheme) key.push_back(core::to_lower(c));
  key.append("://");
  // RFC 9110 4.2.3: the host is case-insensitive and the default port is the same as none.
  const std::string_view dp = default_port(scheme);
  if (authority.size() > dp.size() && authority.substr(authority.size() - dp.size()) == dp) {
    authority.remove_suffix(dp.size());
  }
  for (char c : authority) key.push_back(core::to_lower(c));
  key.append(path.empty() ? std::string_view("/") : path);  // 4.2.3: "" and "/" are the same
  if (has_query) {
    key.push_back('?');
    key.append(query);
  }
  return key;
}

std::string primary_key(std::string_view scheme, const http::Request& req) {
  return primary_key(scheme, req.host, req.path, req.has_query, req.query);
}

bool is_safe(http::Method m) {
  // RFC 9110 9.2.1.
  return m == http::Method::kGet || m == http::Method::kHead || m == http::Method::kOptions ||
         m == http::Method::kTrace;
}

std::vector<std::string> invalidation_keys(std::string_view scheme, const http::Request& req,
                                           const http::Response& resp) {
  std::vector<std::string> keys;
  // 4.4: an unsafe method with a non-error (2xx or 3xx) status invalidates.
  if (is_safe(req.method) || resp.status < 200 || resp.status >= 400) return keys;
  const std::string self = primary_key(scheme, req);
  keys.push_back(self);
  const std::string origin = primary_key(scheme, req.host, "", false, "");  // "scheme://host/"
  const std::string_view origin_prefix(origin.data(), origin.size() - 1);
  for (std::string_view field : {std::string_view("location"), std::string_view("content-location")}) {
    bool found = false;
    std::string_view ref = trim(resp.header(field, &found));
    if (!found || ref.empty()) continue;
    UriParts u;
    std::string_view ref_scheme = scheme;
    const size_t colon = ref.find(':');
    const size_t slash = ref.find('/');
    if (colon != std::string_view::npos && (slash == std::string_view::npos || colon < slash)) {
      // absolute URI: "scheme://authority/path?query"
      ref_scheme = ref.substr(0, colon);
      ref.remove_prefix(colon + 1);
      if (ref.substr(0, 2) != "//") continue;
    }
    std::string resolved;
    if (ref.substr(0, 2) == "//") {
      ref.remove_prefix(2);
      const size_t end = ref.find_first_of("/?#");
      u.authority = ref.substr(0, end);
      split_path_query(end == std::string_view::npos ? std::string_view() : ref.substr(end), u);
    } else {
      u.authority = req.host;
      if (!ref.empty() && ref[0] == '/') {
        split_path_query(ref, u);
      } else {
        // A relative path: merged with the target's directory (RFC 3986 5.2.3); dot-segments
        // are not removed, so "../x" forms simply miss (4.4 invalidation is best effort).
        const size_t dir = req.path.rfind('/');
        resolved.assign(req.path.substr(0, dir == std::string_view::npos ? 0 : dir + 1));
        if (resolved.empty()) resolved.push_back('/');
        resolved.append(ref);
        split_path_query(resolved, u);
      }
    }
    std::string key = primary_key(ref_scheme, u.authority, u.path, u.has_query, u.query);
    // 4.4: only URIs with the same origin as the target may be invalidated.
    if (key.compare(0, origin_prefix.size(), origin_prefix) != 0) continue;
    if (key.size() > origin_prefix.size() && key[origin_prefix.size()] != '/') continue;
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(std::move(key));
  }
  return keys;
}

bool weak_etag_match(std::string_view a, std::string_view b) {
  bool wa = false, wb = false;
  const std::string_view ta = opaque_tag(a, &wa), tb = opaque_tag(b, &wb);
  return !ta.empty() && ta == tb;
}

bool if_none_match_matches(std::string_view list, std::string_view etag) {
  list = trim(list);
  if (list == "*") return true;  // RFC 9110 13.1.2: any current representation
  if (etag.empty()) return false;
  // entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc may include ',' so a plain split is wrong.
  size_t i = 0;
  while (i < list.size()) {
    while (i < list.size() && (list[i] == ',' || is_ows(list[i]))) ++i;
    const size_t start = i;
    if (list.substr(i, 2) == "W/") i += 2;
    if (i >= list.size() || list[i] != '"') return false;  // malformed list: no match
    const size_t close = list.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    i = close + 1;
    if (weak_etag_match(list.substr(start, i - start), etag)) return true;
  }
  return false;
}

ClientConditional evaluate_conditional(const http::Request& req, const ResponseFacts& f,
                                       int64_t response_time, int64_t now_unix) {
  if (req.method != http::Method::kGet && req.method != http::Method::kHead) {
    return ClientConditional::kNone;
  }
  bool any_inm = false, inm_match = false;
  for (uint16_t i = 0; i < req.header_count; ++i) {
    if (!iequals(req.headers[i].name, "if-none-match")) continue;
    any_inm = true;
    if (if_none_match_matches(req.headers[i].value, f.etag)) inm_match = true;
  }
  if (any_inm) return inm_match ? ClientConditional::kNotModified : ClientConditional::kFailed;
  bool found = false;
  const std::string_view ims = req.header("if-modified-since", &found);
  if (!found) return ClientConditional::kNone;
  const auto t = parse_http_date(trim(ims), now_unix);
  // RFC 9110 13.1.3: an invalid date is ignored, and so is one later than the current time.
  if (!t || *t > now_unix) return ClientConditional::kNone;
  // RFC 9111 4.3.2: Last-Modified, else Date, else the time the response was received.
  const int64_t base =
      f.last_modified != kAbsent ? f.last_modified : (f.date != kAbsent ? f.date : response_time);
  return base <= *t ? ClientConditional::kNotModified : ClientConditional::kFailed;
}

bool sent_in_304(std::string_view n) {
  return iequals(n, "content-location") || iequals(n, "date") || iequals(n, "etag") ||
         iequals(n, "vary") || iequals(n, "cache-control") || iequals(n, "expires");
}

Validators revalidation_validators(const http::Header* stored, uint16_t count) {
  Validators v;
  v.if_none_match = first_field(stored, count, "etag");
  v.if_modified_since = first_field(stored, count, "last-modified");
  return v;
}

bool not_modified_selects(const ResponseFacts& stored, const http::Response& nm) {
  bool has_etag = false;
  const std::string_view etag = trim(nm.header("etag", &has_etag));
  if (has_etag) {
    bool weak_new = false, weak_old = false;
    const std::string_view tn = opaque_tag(etag, &weak_new);
    const std::string_view to = opaque_tag(stored.etag, &weak_old);
    if (to.empty() || tn != to) return false;
    // A strong validator selects only a response with the same strong validator (4.3.4).
    return weak_new || !weak_old;
  }
  bool has_lm = false;
  const std::string_view lm = nm.header("last-modified", &has_lm);
  if (has_lm) {
    const auto t = parse_http_date(trim(lm), stored.date != kAbsent ? stored.date : 0);
    return t && stored.last_modified != kAbsent && *t == stored.last_modified;
  }
  // 4.3.4: no validator in the 304 selects only a stored response that has none either.
  return stored.etag.empty() && stored.last_modified == kAbsent;
}

bool stored_field(std::string_view name, const http::Response& resp) {
  if (http::is_hop_by_hop(name)) return false;
  for (uint8_t i = 0; i < resp.connection_token_count; ++i) {
    if (iequals(name, resp.connection_tokens[i])) return false;  // RFC 9110 7.6.1
  }
  return true;
}

std::vector<http::Header> updated_headers(const http::Header* stored, uint16_t stored_count,
                                          const http::Response& nm) {
  // 3.2: fields of the 304 that may not replace stored ones. Framing fields describe the stored
  // body, which the 304 does not carry.
  auto updatable = [&](std::string_view name) {
    return stored_field(name, nm) && !iequals(name, "content-length") &&
           !iequals(name, "transfer-encoding") && !iequals(name, "content-range");
  };
  std::vector<http::Header> out;
  out.reserve(stored_count + nm.header_count);
  for (uint16_t i = 0; i < stored_count; ++i) {
    bool replaced = false;
    for (uint16_t k = 0; k < nm.header_count && !replaced; ++k) {
      replaced = updatable(nm.headers[k].name) && iequals(nm.headers[k].name, stored[i].name);
    }
    if (!replaced) out.push_back(stored[i]);
  }
  for (uint16_t k = 0; k < nm.header_count; ++k) {
    if (updatable(nm.headers[k].name)) out.push_back(nm.headers[k]);
  }
  return out;
}

size_t format_cache_status(std::string_view cache_name, const CacheStatus& s, char* out,
                           size_t cap) {
  std::string v(cache_name);
  if (s.hit) v.append("; hit");
  static constexpr std::string_view kFwd[] = {"", "uri-miss", "vary-miss", "miss",
                                              "request", "stale", "bypass", "method"};
  if (s.fwd != Forward::kNone) {
    v.append("; fwd=");
    v.append(kFwd[static_cast<size_t>(s.fwd)]);
  }
  if (s.fwd_status != 0) v.append("; fwd-status=").append(std::to_string(s.fwd_status));
  if (s.stored) v.append("; stored");
  if (s.collapsed) v.append("; collapsed");
  if (s.has_ttl) v.append("; ttl=").append(std::to_string(s.ttl));
  if (!s.detail.empty()) {
    // RFC 8941 3.3.4: a token starts with ALPHA or '*' and continues with tchar, ':' or '/'.
    auto tchar = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             std::string_view("!#$%&'*+-.^_`|~:/").find(c) != std::string_view::npos;
    };
    const char c0 = s.detail[0];
    bool token = (c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || c0 == '*';
    for (char c : s.detail) token = token && tchar(c);
    v.append("; detail=");
    if (token) {
      v.append(s.detail);
    } else {
      v.push_back('"');
      for (char c : s.detail) {
        if (c < 0x20 || c > 0x7e) continue;  // sf-string is printable ASCII only
        if (c == '"' || c == '\\') v.push_back('\\');
        v.push_back(c);
      }
      v.push_back('"');
    }
  }
  if (v.size() > cap) return 0;
  std::copy(v.begin(), v.end(), out);
  return v.size();
}

}  // namespace ringway::cache
