// Cache-Control parsing, RFC 9111 5.2: cache-directive = token [ "=" ( token / quoted-string ) ],
// comma-separated. Tolerant where the RFC asks recipients to be (case, whitespace, quoted values),
// strict nowhere: an unparseable directive is skipped, never fatal.
#include "ringway/cache/cache_control.h"

#include "ringway/core/ascii.h"

namespace ringway::cache {
namespace {

using core::iequals;

using core::is_ows;
constexpr auto& trim = core::trim_ows;

// delta-seconds (1.2.2): 1*DIGIT, saturating at 2^31. A missing or non-numeric value gives 0:
// 4.2.1 encourages treating invalid freshness information as stale.
int64_t delta_seconds(std::string_view v, bool has_value) {
  if (!has_value || v.empty()) return 0;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + (c - '0');
    if (n > kDeltaSecondsMax) return kDeltaSecondsMax;
  }
  return n;
}

void set_delta(int64_t& field, std::string_view v, bool has_value) {
  // 4.2.1: with several values for one directive, the first occurrence is used.
  if (field == kAbsent) field = delta_seconds(v, has_value);
}

void apply(std::string_view name, std::string_view value, bool has_value, CacheControl& cc) {
  switch (name.size()) {
    case 6:
      if (iequals(name, "public")) cc.public_ = true;
      break;
    case 7:
      if (iequals(name, "max-age")) set_delta(cc.max_age, value, has_value);
      else if (iequals(name, "private")) cc.private_ = true;
      break;
    case 8:
      if (iequals(name, "no-store")) cc.no_store = true;
      else if (iequals(name, "no-cache")) cc.no_cache = true;
      else if (iequals(name, "s-maxage")) set_delta(cc.s_maxage, value, has_value);
      break;
    case 9:
      if (iequals(name, "max-stale")) {
        // 5.2.1.2: without a value the client accepts a stale response of any age.
        if (!has_value) cc.max_stale_any = true;
        else set_delta(cc.max_stale, value, has_value);
      } else if (iequals(name, "min-fresh")) {
        set_delta(cc.min_fresh, value, has_value);
      } else if (iequals(name, "immutable")) {
        cc.immutable = true;
      }
      break;
    case 12:
      if (iequals(name, "no-transform")) cc.no_transform = true;
      break;
    case 14:
      if (iequals(name, "only-if-cached")) cc.only_if_cached = true;
      else if (iequals(name, "stale-if-error")) set_delta(cc.stale_if_error, value, has_value);
      break;
    case 15:
      if (iequals(name, "must-revalidate")) cc.must_revalidate = true;
      else if (iequals(name, "must-understand")) cc.must_understand = true;
      break;
    case 16:
      if (iequals(name, "proxy-revalidate")) cc.proxy_revalidate = true;
      break;
    case 22:
      if (iequals(name, "stale-while-revalidate")) {
        set_delta(cc.stale_while_revalidate, value, has_value);
      }
      break;
    default:
      break;  // 5.2.3: unknown extensions are ignored
  }
}

}  // namespace

void parse_cache_control(std::string_view value, CacheControl& cc) {
  cc.present = true;
  size_t i = 0;
  const size_t n = value.size();
  while (i < n) {
    // name: up to '=' or ','
    size_t start = i;
    while (i < n && value[i] != '=' && value[i] != ',') ++i;
    const std::string_view name = trim(value.substr(start, i - start));
    std::string_view val;
    bool has_value = false;
    if (i < n && value[i] == '=') {
      ++i;
      while (i < n && is_ows(value[i])) ++i;
      has_value = true;
      if (i < n && value[i] == '"') {
        // quoted-string (RFC 9110 5.6.4); a comma inside it does not end the directive. Quoted
        // pairs are kept as-is: no directive this cache acts on needs them decoded.
        const size_t q = ++i;
        while (i < n && value[i] != '"') {
          if (value[i] == '\\' && i + 1 < n) ++i;
          ++i;
        }
        val = value.substr(q, i - q);
        if (i < n) ++i;  // closing quote
        while (i < n && value[i] != ',') ++i;  // junk after the quotes is ignored
      } else {
        start = i;
        while (i < n && value[i] != ',') ++i;
        val = trim(value.substr(start, i - start));
      }
    }
    if (i < n) ++i;  // ','
    if (!name.empty()) apply(name, val, has_value, cc);
  }
}

CacheControl cache_control_of(const http::Header* headers, uint16_t count) {
  CacheControl cc;
  for (uint16_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, "cache-control")) parse_cache_control(headers[i].value, cc);
  }
  return cc;
}

}  // namespace ringway::cache
