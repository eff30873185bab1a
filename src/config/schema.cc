// The option table. Every option is one row; the same setter serves the flag and the JSON key, so
// "--max-body-size 64m" and "max_body_size": "64m" cannot drift apart.
#include "config/schema.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "config/values.h"
#include "ringway/http/request.h"  // kMaxHeaders: --max-header-count may not exceed it

namespace ringway::config::detail {
namespace {

constexpr uint64_t kU32Max = std::numeric_limits<uint32_t>::max();
// The smallest cache: its bytes are split over 16 shards, each must hold a few objects.
constexpr uint64_t kMinCacheSize = 64 * 1024;

// --- setter generators: one per value syntax, instantiated per member ---

template <auto Member>
bool set_duration(Config& c, std::string_view v, std::string& e) {
  return parse_duration_ms(v, c.*Member, e);
}

template <class T, auto Member, uint64_t Max>
bool set_size(T& c, std::string_view v, std::string& e) {
  uint64_t n = 0;
  if (!parse_size(v, Max, n, e)) return false;
  c.*Member = static_cast<std::remove_reference_t<decltype(c.*Member)>>(n);
  return true;
}

template <auto Member, uint64_t Min, uint64_t Max>
bool set_count(Config& c, std::string_view v, std::string& e) {
  uint64_t n = 0;
  if (!parse_count(v, Min, Max, n, e)) return false;
  c.*Member = static_cast<std::remove_reference_t<decltype(c.*Member)>>(n);
  return true;
}

template <auto Member>
bool set_bool(Config& c, std::string_view v, std::string& e) {
  return parse_bool(v, c.*Member, e);
}

bool no_ctl(std::string_view s) {
  for (unsigned char ch : s) {
    if (ch == '\r' || ch == '\n' || ch == '\0') return false;
  }
  return true;
}

bool visible_ascii(std::string_view s) {
  for (unsigned char ch : s) {
    if (ch <= 0x20 || ch >= 0x7f) return false;
  }
  return true;
}

// "NAME:VALUE" with OWS around VALUE trimmed (RFC 9110 5.5).
bool split_name_value(std::string_view text, std::string_view& name, std::string_view& value,
                      std::string& e) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    e = "expected NAME:VALUE, got '" + std::string(text) + "'";
    return false;
  }
  name = text.substr(0, colon);
  value = text.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (!is_token(name)) {
    e = "invalid header name '" + std::string(name) + "' (must be a token)";
    return false;
  }
  if (!no_ctl(value)) {
    e = "header value for '" + std::string(name) + "' contains CR, LF or NUL";
    return false;
  }
  return true;
}

// --- list and special options ---

bool add_listen(Config& c, std::string_view v, std::string& e) {
  Address a;
  if (!parse_host_port(std::string(v), a, e)) return false;
  c.listen.push_back(std::move(a));
  return true;
}

bool set_admin(Config& c, std::string_view v, std::string& e) {
  if (v == "off") {
    c.has_admin = false;
    c.admin_listen = Address{};
    return true;
  }
  if (!parse_host_port(std::string(v), c.admin_listen, e)) return false;
  c.has_admin = true;
  return true;
}

bool add_header(Config& c, std::string_view v, std::string& e) {
  std::string_view name, value;
  if (!split_name_value(v, name, value, e)) return false;
  // The forwarded head is rebuilt with exactly one framing header and no hop-by-hop fields
  // (RFC 9112 6.1, RFC 9110 7.6.1); letting configuration add those would undo that.
  static constexpr std::string_view kReserved[] = {
      "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
      "te", "trailer", "proxy-connection", "host"};
  for (std::string_view r : kReserved) {
    if (ascii_iequals(name, r)) {
      e = "header '" + std::string(name) + "' is managed by the gateway and cannot be added";
      return false;
    }
  }
  c.add_headers.push_back(NameValue{std::string(name), std::string(value)});
  return true;
}

bool set_dns_refresh(Config& c, std::string_view v, std::string& e) {
  if (!parse_duration_ms(v, c.dns_refresh_ms, e)) return false;
  if (c.dns_refresh_ms == 0) {
    e = "expected a duration above zero, got '" + std::string(v) + "'";
    return false;
  }
  return true;
}

bool add_flag_route(Config& c, std::string_view v, std::string& e) {
  const size_t eq = v.find('=');
  if (eq == std::string_view::npos) {
    e = "expected PREFIX=URL[,URL...], got '" + std::string(v) + "'";
    return false;
  }
  Route r;
  r.prefix.assign(v.substr(0, eq));
  if (!valid_route_prefix(r.prefix, e)) return false;
  std::string_view urls = v.substr(eq + 1);
  while (true) {
    const size_t comma = urls.find(',');
    Target t;
    if (!parse_target_url_deferred(std::string(urls.substr(0, comma)), t, e)) return false;
    if (!t.resolve_error.empty()) t.resolve_error = "--route " + std::string(v) + ": " + t.resolve_error;
    r.targets.push_back(std::move(t));
    if (comma == std::string_view::npos) break;
    urls.remove_prefix(comma + 1);
  }
  c.routes.push_back(std::move(r));
  return true;
}

bool set_access_log(Config& c, std::string_view v, std::string& e) {
  if (v.empty() || v.find('\0') != std::string_view::npos) {
    e = "expected a file path, '-' or 'off'";
    return false;
  }
  c.access_log.assign(v);
  return true;
}

bool set_nothing(Config&, std::string_view, std::string&) { return true; }

// --- rate limits and authentication ---
// The specs and key sources are parsed by the filter libraries when the chain is built
// (filter::build_builtin_filters, also run by -t); here only what needs no filter knowledge is
// checked, so that a typo is still reported with the flag or key that carried it.

bool printable_text(std::string_view v, std::string_view what, std::string& e) {
  if (v.empty() || !no_ctl(v)) {
    e = "expected " + std::string(what);
    return false;
  }
  return true;
}

bool add_rate_limit(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "RATE/UNIT[,burst=N][,key=...][,route=PREFIX]", e)) return false;
  c.rate_limits.emplace_back(v);
  return true;
}

// --- cluster rate limits (issue 15) ---

bool set_redis(Config& c, std::string_view v, std::string& e) {
  if (v.substr(0, 5) == "unix:") {
    const std::string_view path = v.substr(5);
    // sockaddr_un::sun_path holds 108 bytes with the terminating NUL.
    if (path.empty() || path.size() > 107 || !no_ctl(path)) {
      e = "expected unix:PATH with a socket path of 1 to 107 bytes";
      return false;
    }
    c.redis_unix_path.assign(path);
    c.redis_address = Address{};
  } else {
    if (!parse_host_port(std::string(v), c.redis_address, e)) return false;
    c.redis_unix_path.clear();
  }
  c.has_redis = true;
  return true;
}

bool set_redis_failure(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "deny, allow, local or local:N", e)) return false;
  c.redis_failure.assign(v);
  return true;
}

bool set_redis_password(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "a password (a non-empty string)", e)) return false;
  c.redis_password.assign(v);
  return true;
}

// "NAME=VALUE" with both sides non-empty. The message never repeats VALUE: for --api-key it is a
// secret.
bool split_assignment(std::string_view v, std::string_view what, std::string& e) {
  const size_t eq = v.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == v.size() || !no_ctl(v)) {
    e = "expected " + std::string(what);
    return false;
  }
  return true;
}

bool add_api_key(Config& c, std::string_view v, std::string& e) {
  if (!split_assignment(v, "NAME=KEY", e)) return false;
  c.api_keys.emplace_back(v);
  return true;
}

template <auto Member>
bool set_path(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "a file path", e)) return false;
  (c.*Member).assign(v);
  return true;
}

bool valid_header_name(std::string_view v, std::string& e) {
  if (is_token(v)) return true;
  e = "invalid header name '" + std::string(v) + "' (must be a token)";
  return false;
}

bool set_tls_client_subject_header(Config& c, std::string_view v, std::string& e) {
  if (!v.empty() && !valid_header_name(v, e)) return false;  // "" = not forwarded
  c.tls_client_subject_header.assign(v);
  return true;
}

bool set_api_key_header(Config& c, std::string_view v, std::string& e) {
  if (!valid_header_name(v, e)) return false;
  c.api_key_header.assign(v);
  return true;
}

bool set_api_key_query(Config& c, std::string_view v, std::string& e) {
  if (v.empty() || !visible_ascii(v) || v.find_first_of("&=#?%+") != std::string_view::npos) {
    e = "invalid query parameter name '" + std::string(v) + "'";
    return false;
  }
  c.api_key_query.assign(v);
  return true;
}

bool add_jwt_key(Config& c, std::string_view v, std::string& e) {
  if (!split_assignment(v, "KID=pem:FILE or KID=secret:FILE", e)) return false;
  c.jwt_keys.emplace_back(v);
  return true;
}

bool set_jwt_leeway(Config& c, std::string_view v, std::string& e) {
  uint32_t ms = 0;
  if (!parse_duration_ms(v, ms, e)) return false;
  if (ms % 1000 != 0) {
    e = "leeway must be whole seconds, got '" + std::string(v) + "'";
    return false;
  }
  c.jwt_leeway_s = ms / 1000;
  return true;
}

bool set_jwt_issuer(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "an issuer (a non-empty string)", e)) return false;
  c.jwt_issuer.assign(v);
  return true;
}

bool add_jwt_audience(Config& c, std::string_view v, std::string& e) {
  if (!printable_text(v, "an audience (a non-empty string)", e)) return false;
  c.jwt_audiences.emplace_back(v);
  return true;
}

bool add_jwt_claim_header(Config& c, std::string_view v, std::string& e) {
  if (!split_assignment(v, "CLAIM=HEADER", e)) return false;
  const std::string_view header = v.substr(v.find('=') + 1);
  if (!is_token(header)) {
    e = "invalid header name '" + std::string(header) + "' (must be a token)";
    return false;
  }
  c.jwt_claim_headers.emplace_back(v);
  return true;
}

bool valid_auth_mode(std::string_view v, std::string& e) {
  if (v == "none" || v == "api-key" || v == "jwt" || v == "any" || v == "mtls") return true;
  e = "expected none, api-key, jwt, any or mtls, got '" + std::string(v) + "'";
  return false;
}

bool set_auth(Config& c, std::string_view v, std::string& e) {
  if (!valid_auth_mode(v, e)) return false;
  c.auth.assign(v);
  return true;
}

// --- TLS (issue 13) ---
// Files are only checked readable here, so that a typo names its flag; the certificates, keys
// and ticket keys themselves are loaded by tls::ServerContext::build at start and on reload.

bool readable_file(std::string_view v, std::string_view what, std::string& e) {
  if (!printable_text(v, "a file path", e)) return false;
  if (access(std::string(v).c_str(), R_OK) != 0) {
    e = "cannot read " + std::string(what) + " '" + std::string(v) + "': " + std::strerror(errno);
    return false;
  }
  return true;
}

template <auto Member>
bool set_readable_file(Config& c, std::string_view v, std::string& e) {
  if (!readable_file(v, "file", e)) return false;
  (c.*Member).assign(v);
  return true;
}

bool add_listen_tls(Config& c, std::string_view v, std::string& e) {
  Address a;
  if (!parse_host_port(std::string(v), a, e)) return false;
  c.listen_tls.push_back(std::move(a));
  c.listen_tls_client_auth.emplace_back();  // "" = --tls-client-auth
  return true;
}

bool set_tls_client_auth(Config& c, std::string_view v, std::string& e);

// "listen_tls": ["HOST:PORT" | {"address": "HOST:PORT", "client_auth": "none|optional|required"}]
// The object form gives one listener its own client-certificate policy (mTLS on an internal port,
// none on the public one) under the one --tls-client-ca.
bool set_listen_tls_json(Config& c, simdjson::dom::element v, const std::string& path,
                         std::string& e) {
  simdjson::dom::array arr;
  if (v.get_array().get(arr) != simdjson::SUCCESS) {
    e = path + ": expected an array of \"HOST:PORT\" or listener objects";
    return false;
  }
  c.listen_tls.clear();
  c.listen_tls_client_auth.clear();
  size_t i = 0;
  for (simdjson::dom::element item : arr) {
    const std::string item_path = path + "[" + std::to_string(i++) + "]";
    std::string_view text;
    if (item.get_string().get(text) == simdjson::SUCCESS) {
      if (!add_listen_tls(c, text, e)) return e.insert(0, item_path + ": "), false;
      continue;
    }
    simdjson::dom::object obj;
    if (item.get_object().get(obj) != simdjson::SUCCESS) {
      e = item_path + ": expected \"HOST:PORT\" or {\"address\", \"client_auth\"}";
      return false;
    }
    std::string_view address, auth;
    for (auto field : obj) {
      std::string_view* dst = field.key == "address" ? &address : field.key == "client_auth" ? &auth : nullptr;
      if (dst == nullptr || field.value.get_string().get(*dst) != simdjson::SUCCESS) {
        e = item_path + "." + std::string(field.key) + ": " +
            (dst == nullptr ? "unknown key (address, client_auth)" : "expected a string");
        return false;
      }
    }
    if (!add_listen_tls(c, address, e)) return e.insert(0, item_path + ".address: "), false;
    if (!auth.empty()) {
      Config probe;
      if (!set_tls_client_auth(probe, auth, e)) return e.insert(0, item_path + ".client_auth: "), false;
      c.listen_tls_client_auth.back().assign(auth);
    }
  }
  return true;
}

bool add_tls_cert(Config& c, std::string_view v, std::string& e) {
  // The last ':' splits: a certificate path may contain one, key paths rarely do.
  const size_t colon = v.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == v.size()) {
    e = "expected CERT.pem:KEY.pem, got '" + std::string(v) + "'";
    return false;
  }
  TlsCertFiles f{std::string(v.substr(0, colon)), std::string(v.substr(colon + 1))};
  if (!readable_file(f.cert, "certificate file", e) || !readable_file(f.key, "key file", e)) {
    return false;
  }
  c.tls_certs.push_back(std::move(f));
  return true;
}

bool set_tls_min_version(Config& c, std::string_view v, std::string& e) {
  if (v != "1.2" && v != "1.3") {
    e = "expected 1.2 or 1.3 (TLS 1.0 and 1.1 are not supported), got '" + std::string(v) + "'";
    return false;
  }
  c.tls_min_version.assign(v);
  return true;
}

template <auto Member>
bool set_cipher_list(Config& c, std::string_view v, std::string& e) {
  // OpenSSL validates the names when the context is built; here only the syntax it cannot
  // misread.
  if (v.empty() || !visible_ascii(v)) {
    e = "expected a ':'-separated OpenSSL cipher list";
    return false;
  }
  (c.*Member).assign(v);
  return true;
}

bool set_tls_client_auth(Config& c, std::string_view v, std::string& e) {
  if (v != "none" && v != "optional" && v != "required") {
    e = "expected none, optional or required, got '" + std::string(v) + "'";
    return false;
  }
  c.tls_client_auth.assign(v);
  return true;
}

// --- route fields (file only) ---

bool set_route_prefix(Route& r, std::string_view v, std::string& e) {
  if (!valid_route_prefix(v, e)) return false;
  r.prefix.assign(v);
  return true;
}

}  // namespace

// "tls": {"ca": FILE, "server_name": NAME, "cert": FILE, "key": FILE, "verify": BOOL} of one
// upstream object. Files are checked readable here; tls::ClientContext::build loads them.
bool parse_upstream_tls(simdjson::dom::element v, const std::string& path, UpstreamTls& out,
                        std::string& e) {
  simdjson::dom::object obj;
  if (v.get_object().get(obj) != simdjson::SUCCESS) {
    e = path + ": expected an object";
    return false;
  }
  for (auto field : obj) {
    const std::string where = path + "." + std::string(field.key);
    if (field.key == "verify") {
      if (field.value.get_bool().get(out.verify) != simdjson::SUCCESS) {
        e = where + ": expected true or false";
        return false;
      }
      continue;
    }
    std::string* dst = field.key == "ca" ? &out.ca : field.key == "server_name" ? &out.server_name
                     : field.key == "cert" ? &out.cert : field.key == "key" ? &out.key : nullptr;
    std::string_view text;
    if (dst == nullptr) {
      e = where + ": unknown key (ca, server_name, cert, key, verify)";
      return false;
    }
    if (field.value.get_string().get(text) != simdjson::SUCCESS || text.empty()) {
      e = where + ": expected a non-empty string";
      return false;
    }
    const bool ok = dst == &out.server_name ? visible_ascii(text) : readable_file(text, "file", e);
    if (!ok) {
      if (dst == &out.server_name) e = "invalid server name";
      e.insert(0, where + ": ");
      return false;
    }
    dst->assign(text);
  }
  if (out.cert.empty() != out.key.empty()) {
    e = path + ": \"cert\" and \"key\" go together";
    return false;
  }
  return true;
}

namespace {

bool add_route_host(Route& r, std::string_view v, std::string& e) {
  // The router compares the Host field without its port, so a port here could never match.
  const bool bracketed = v.size() > 2 && v.front() == '[' && v.back() == ']';
  if (v.empty() || !visible_ascii(v) || (!bracketed && v.find(':') != std::string_view::npos)) {
    e = "invalid host '" + std::string(v) + "' (a host name without port)";
    return false;
  }
  r.hosts.push_back(ascii_lower(v));
  return true;
}

bool add_route_method(Route& r, std::string_view v, std::string& e) {
  if (!is_token(v)) {
    e = "invalid method '" + std::string(v) + "'";
    return false;
  }
  r.methods.emplace_back(v);  // method names are case-sensitive (RFC 9110 9.1)
  return true;
}

bool add_route_header(Route& r, std::string_view v, std::string& e) {
  std::string_view name, value;
  if (!split_name_value(v, name, value, e)) return false;
  r.headers.push_back(HeaderMatch{std::string(name), std::string(value)});
  return true;
}

// --- Access fields: shared by routes and aggregate endpoints (file only) ---

template <class T>
bool set_access_auth(T& r, std::string_view v, std::string& e) {
  if (!valid_auth_mode(v, e)) return false;
  r.auth.assign(v);
  return true;
}

template <class T>
bool add_access_scope(T& r, std::string_view v, std::string& e) {
  // RFC 6749 3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
  if (v.empty() || !visible_ascii(v) || v.find_first_of("\"\\") != std::string_view::npos) {
    e = "invalid scope '" + std::string(v) + "'";
    return false;
  }
  r.scopes.emplace_back(v);
  return true;
}

template <class T>
bool add_access_claim(T& r, std::string_view v, std::string& e) {
  // From the JSON object {"claim": "value"}, handed over as "claim:value".
  const size_t colon = v.find(':');
  if (colon == 0 || colon == std::string_view::npos || !no_ctl(v)) {
    e = "expected a claim name and a string value";
    return false;
  }
  r.claims.push_back(NameValue{std::string(v.substr(0, colon)), std::string(v.substr(colon + 1))});
  return true;
}

// "client_subjects": the verified client certificate subjects (RFC 2253 text, exact) that an
// "auth": "mtls" route admits; empty = any verified certificate.
template <class T>
bool add_access_client_subject(T& r, std::string_view v, std::string& e) {
  if (!printable_text(v, "a certificate subject (RFC 2253)", e)) return false;
  r.client_subjects.emplace_back(v);
  return true;
}

template <class T>
bool add_access_rate_limit(T& r, std::string_view v, std::string& e) {
  if (!printable_text(v, "RATE/UNIT[,burst=N][,key=...]", e)) return false;
  // The route (or endpoint) itself is the scope; a second, different scope inside it would be
  // confusing.
  if (v.find("route=") != std::string_view::npos) {
    e = "route= is implied by the route and not allowed here";
    return false;
  }
  r.rate_limits.emplace_back(v);
  return true;
}

// --- aggregate endpoint fields (file only) ---

bool set_aggregate_deadline(Aggregate& a, std::string_view v, std::string& e) {
  if (!parse_duration_ms(v, a.deadline_ms, e)) return false;
  if (a.deadline_ms == 0) {
    e = "must be more than 0";
    return false;
  }
  return true;
}

bool add_aggregate_header(Aggregate& a, std::string_view v, std::string& e) {
  if (!valid_header_name(v, e)) return false;
  a.pass_headers.emplace_back(v);
  return true;
}

// A route's "cache" object (issue 16); any key given turns the route's cache on unless "enabled"
// says otherwise.
template <auto Member>
bool set_route_cache_duration(Route& r, std::string_view v, std::string& e) {
  r.cache.configured = true;
  return parse_duration_ms(v, r.cache.*Member, e);
}

template <auto Member>
bool set_route_cache_bool(Route& r, std::string_view v, std::string& e) {
  r.cache.configured = true;
  return parse_bool(v, r.cache.*Member, e);
}

bool set_route_cache_size(Route& r, std::string_view v, std::string& e) {
  r.cache.configured = true;
  if (!parse_size(v, std::numeric_limits<uint64_t>::max(), r.cache.size, e)) return false;
  if (r.cache.size < kMinCacheSize) {
    e = "a cache needs at least 64k";
    return false;
  }
  return true;
}

bool add_route_cache_key_header(Route& r, std::string_view v, std::string& e) {
  r.cache.configured = true;
  if (!valid_header_name(v, e)) return false;
  r.cache.key_headers.emplace_back(v);
  return true;
}

bool set_cache_size(Config& c, std::string_view v, std::string& e) {
  if (!parse_size(v, std::numeric_limits<uint64_t>::max(), c.cache_size, e)) return false;
  if (c.cache_size < kMinCacheSize) {
    e = "a cache needs at least 64k";
    return false;
  }
  return true;
}

bool set_routes_json(Config& c, simdjson::dom::element v, const std::string& path,
                     std::string& e) {
  return for_each_object(v, path, "route", e,
                         [&](simdjson::dom::object obj, const std::string& item_path) {
                           Route r;
                           if (!apply_object<Route>(r, obj, route_fields(), item_path + ".", "", e)) {
                             return false;
                           }
                           if (r.prefix.empty()) {
                             e = item_path + ": missing \"prefix\"";
                             return false;
                           }
                           if (r.targets.empty()) {
                             e = item_path + ": missing or empty \"upstreams\"";
                             return false;
                           }
                           c.routes.push_back(std::move(r));
                           return true;
                         });
}

// clang-format off
constexpr Option kOptions[] = {
  {.flag = "listen", .json_key = "listen", .metavar = "HOST:PORT", .default_text = "0.0.0.0:8080", .help = "address to accept clients on; repeatable, [::1]:8080 for IPv6", .json_kind = JsonKind::kStringList, .set = add_listen, .clear = [](Config& c) { c.listen.clear(); }},
  {.flag = "route", .json_key = "routes", .metavar = "PREFIX=URL[,URL...]", .default_text = "none", .help = "forward paths under PREFIX to the http:// URLs (round-robin); repeatable", .json_kind = JsonKind::kCustom, .set = add_flag_route, .clear = [](Config& c) { c.routes.clear(); }, .json_set = set_routes_json},
  {.flag = "aggregate", .json_key = "aggregates", .metavar = "PATTERN=NAME:URL[,NAME:URL...]", .default_text = "none", .help = "fan GET PATTERN (may use {param}s) out to every URL at once; each JSON body comes back under its NAME (NAME[] for an array body); repeatable (the file form has all options)", .json_kind = JsonKind::kCustom, .set = add_flag_aggregate, .clear = [](Config& c) { c.aggregates.clear(); }, .json_set = set_aggregates_json},
  {.flag = "config", .metavar = "FILE", .default_text = "none", .help = "JSON configuration file; flags override it", .set = set_nothing, .action = Action::kConfigFile},
  {.flag = "test", .short_flag = 't', .default_text = "off", .help = "validate the configuration, print \"configuration OK\" and exit", .set = set_bool<&Config::test_only>},
  {.flag = "threads", .json_key = "threads", .metavar = "N", .default_text = "0 (online CPUs)", .help = "worker threads, one io_uring each", .json_kind = JsonKind::kScalar, .set = set_count<&Config::threads, 0, 1024>},
  {.flag = "max-body-size", .json_key = "max_body_size", .metavar = "SIZE", .default_text = "64m", .help = "largest request body (413 above it); k/m/g suffixes", .json_kind = JsonKind::kScalar, .set = set_size<Config, &Config::max_body_size, std::numeric_limits<uint64_t>::max()>},
  {.flag = "add-header", .json_key = "add_headers", .metavar = "NAME:VALUE", .default_text = "none", .help = "header added to every forwarded request; repeatable", .json_kind = JsonKind::kStringMap, .set = add_header, .clear = [](Config& c) { c.add_headers.clear(); }},
  {.flag = "dns-refresh", .json_key = "dns_refresh", .metavar = "DUR", .default_text = "0 (resolve once)", .help = "re-resolve upstream host names of routes that do not say this often (c-ares thread)", .json_kind = JsonKind::kScalar, .set = set_dns_refresh},
  {.flag = "dns-server", .json_key = "dns_server", .metavar = "IP:PORT", .default_text = "resolv.conf", .help = "DNS server for re-resolved upstream names", .json_kind = JsonKind::kString, .set = set_dns_server},
  {.flag = "balance", .json_key = "balance", .metavar = "round_robin|least_request|random", .default_text = "least_request", .help = "how routes that do not say pick among their upstreams", .json_kind = JsonKind::kString, .set = set_default_balance},
  {.flag = "preserve-host", .json_key = "preserve_host", .default_text = "off", .help = "forward the client's Host instead of the upstream authority", .json_kind = JsonKind::kBool, .set = set_bool<&Config::preserve_host>},
  {.flag = "upstream-keepalive", .json_key = "upstream_keepalive", .metavar = "N", .default_text = "64", .help = "idle pooled connections per upstream per worker; 0 disables reuse", .json_kind = JsonKind::kScalar, .set = set_count<&Config::upstream_keepalive, 0, 1'000'000>},
  {.flag = "client-header-timeout", .json_key = "timeouts.client_header", .metavar = "DUR", .default_text = "10s", .help = "time for a whole request head to arrive", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::client_header_timeout_ms>},
  {.flag = "keepalive-timeout", .json_key = "timeouts.keepalive", .metavar = "DUR", .default_text = "60s", .help = "idle client connection between requests", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::client_keepalive_timeout_ms>},
  {.flag = "body-timeout", .json_key = "timeouts.body", .metavar = "DUR", .default_text = "30s", .help = "longest pause in body progress, either direction", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::body_timeout_ms>},
  {.flag = "upstream-connect-timeout", .json_key = "timeouts.upstream_connect", .metavar = "DUR", .default_text = "5s", .help = "upstream TCP connect", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::upstream_connect_timeout_ms>},
  {.flag = "upstream-response-timeout", .json_key = "timeouts.upstream_response", .metavar = "DUR", .default_text = "60s", .help = "request sent to upstream response head (504 after)", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::upstream_response_timeout_ms>},
  {.flag = "upstream-idle-timeout", .json_key = "timeouts.upstream_idle", .metavar = "DUR", .default_text = "4s", .help = "pooled idle upstream connection lifetime", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::upstream_idle_timeout_ms>},
  {.flag = "drain-timeout", .json_key = "timeouts.drain", .metavar = "DUR", .default_text = "10s", .help = "graceful shutdown grace period", .json_kind = JsonKind::kScalar, .set = set_duration<&Config::drain_timeout_ms>},
  {.flag = "max-request-line", .json_key = "max_request_line", .metavar = "SIZE", .default_text = "8k", .help = "longest request line (414 above it)", .json_kind = JsonKind::kScalar, .set = set_size<Config, &Config::max_request_line, kU32Max>},
  {.flag = "max-header-bytes", .json_key = "max_header_bytes", .metavar = "SIZE", .default_text = "16k", .help = "largest request head (431 above it)", .json_kind = JsonKind::kScalar, .set = set_size<Config, &Config::max_head_bytes, kU32Max>},
  {.flag = "max-header-count", .json_key = "max_header_count", .metavar = "N", .default_text = "100", .help = "most header fields per request, at most 128 (431 above it)", .json_kind = JsonKind::kScalar, .set = set_count<&Config::max_header_count, 1, http::kMaxHeaders>},
  {.flag = "max-connections", .json_key = "max_connections", .metavar = "N", .default_text = "65536", .help = "client connections per worker; more are closed", .json_kind = JsonKind::kScalar, .set = set_count<&Config::max_connections, 1, kU32Max>},
  {.flag = "access-log", .json_key = "access_log", .metavar = "PATH|-|off", .default_text = "-", .help = "access log file, '-' for stdout, 'off' to disable", .json_kind = JsonKind::kString, .set = set_access_log},
  {.flag = "admin-listen", .json_key = "admin_listen", .metavar = "HOST:PORT", .default_text = "off", .help = "address of the admin/metrics endpoint", .json_kind = JsonKind::kString, .set = set_admin},
  {.flag = "demo", .json_key = "demo", .default_text = "off", .help = "start built-in demo upstreams and routes", .json_kind = JsonKind::kBool, .set = set_bool<&Config::demo>},
  {.flag = "sqpoll", .json_key = "sqpoll", .default_text = "off", .help = "use an SQPOLL kernel thread per ring (costs a core)", .json_kind = JsonKind::kBool, .set = set_bool<&Config::sqpoll>},
  {.flag = "splice", .json_key = "splice", .metavar = "on|off", .default_text = "on", .help = "move Content-Length bodies with splice(2) (zero-copy); off copies through buffers", .json_kind = JsonKind::kBool, .set = set_bool<&Config::splice>},
  {.flag = "splice-min-bytes", .json_key = "splice_min_bytes", .metavar = "SIZE", .default_text = "32k", .help = "bodies with less than this left after the head take the copy path", .json_kind = JsonKind::kScalar, .set = set_size<Config, &Config::splice_min_bytes, std::numeric_limits<uint64_t>::max()>},
  {.flag = "rate-limit", .json_key = "rate_limits", .metavar = "SPEC", .default_text = "none", .help = "RATE/UNIT[,burst=N][,key=ip|api-key|jwt-sub|header:NAME][,route=PREFIX][,scope=local|cluster], UNIT s|m|h; repeatable", .json_kind = JsonKind::kStringList, .set = add_rate_limit, .clear = [](Config& c) { c.rate_limits.clear(); }},
  {.flag = "rate-limit-keys", .json_key = "rate_limit_keys", .metavar = "N", .default_text = "65536", .help = "keys tracked per rate-limit spec (idle keys expire)", .json_kind = JsonKind::kScalar, .set = set_count<&Config::rate_limit_keys, 16, 1u << 24>},
  {.flag = "rate-limit-headers", .json_key = "rate_limit_headers", .default_text = "off", .help = "add RateLimit/RateLimit-Policy fields to allowed responses too", .json_kind = JsonKind::kBool, .set = set_bool<&Config::rate_limit_headers>},
  {.flag = "rate-limit-legacy-headers", .json_key = "rate_limit_legacy_headers", .default_text = "off", .help = "emit X-RateLimit-Limit/-Remaining/-Reset instead of the draft fields", .json_kind = JsonKind::kBool, .set = set_bool<&Config::rate_limit_legacy_headers>},
  {.flag = "redis", .json_key = "redis.address", .metavar = "HOST:PORT|unix:PATH", .default_text = "none", .help = "Redis holding the buckets of scope=cluster rate limits (password, database: \"redis\" in the config file)", .json_kind = JsonKind::kString, .set = set_redis},
  {.flag = "redis-failure", .json_key = "redis.failure", .metavar = "deny|allow|local[:N]", .default_text = "deny", .help = "Redis unreachable and leased tokens spent: 429, admit, or enforce 1/N of each cluster limit here", .json_kind = JsonKind::kString, .set = set_redis_failure},
  {.json_key = "redis.password", .json_kind = JsonKind::kString, .set = set_redis_password},
  {.json_key = "redis.database", .json_kind = JsonKind::kScalar, .set = set_count<&Config::redis_database, 0, 1u << 20>},
  {.flag = "auth", .json_key = "auth", .metavar = "none|api-key|jwt|any|mtls", .default_text = "none", .help = "authentication for routes that do not set their own", .json_kind = JsonKind::kString, .set = set_auth},
  {.flag = "api-key", .json_key = "api_keys", .metavar = "NAME=KEY", .default_text = "none", .help = "API key of consumer NAME (forwarded as X-Consumer); repeatable", .json_kind = JsonKind::kStringList, .set = add_api_key, .clear = [](Config& c) { c.api_keys.clear(); }},
  {.flag = "api-keys-file", .json_key = "api_keys_file", .metavar = "FILE", .default_text = "none", .help = "file of NAME=KEY lines ('#' comments)", .json_kind = JsonKind::kString, .set = set_path<&Config::api_keys_file>},
  {.flag = "api-key-header", .json_key = "api_key_header", .metavar = "NAME", .default_text = "X-API-Key", .help = "request header carrying the API key", .json_kind = JsonKind::kString, .set = set_api_key_header},
  {.flag = "api-key-query", .json_key = "api_key_query", .metavar = "PARAM", .default_text = "none", .help = "query parameter carrying the API key", .json_kind = JsonKind::kString, .set = set_api_key_query},
  {.flag = "jwt-jwks", .json_key = "jwt.jwks", .metavar = "FILE", .default_text = "none", .help = "JWKS file with the JWT verification keys", .json_kind = JsonKind::kString, .set = set_path<&Config::jwt_jwks>},
  {.flag = "jwt-key", .json_key = "jwt.keys", .metavar = "KID=pem:FILE|secret:FILE", .default_text = "none", .help = "JWT key from a PEM public key or an HMAC secret file (pem/ALG:, secret/ALG: pick the alg); repeatable", .json_kind = JsonKind::kStringList, .set = add_jwt_key, .clear = [](Config& c) { c.jwt_keys.clear(); }},
  {.flag = "jwt-leeway", .json_key = "jwt.leeway", .metavar = "DUR", .default_text = "60s", .help = "clock skew allowed for exp, nbf and iat", .json_kind = JsonKind::kScalar, .set = set_jwt_leeway},
  {.flag = "jwt-issuer", .json_key = "jwt.issuer", .metavar = "ISS", .default_text = "not checked", .help = "required iss claim", .json_kind = JsonKind::kString, .set = set_jwt_issuer},
  {.flag = "jwt-audience", .json_key = "jwt.audiences", .metavar = "AUD", .default_text = "not checked", .help = "accepted aud value; repeatable", .json_kind = JsonKind::kStringList, .set = add_jwt_audience, .clear = [](Config& c) { c.jwt_audiences.clear(); }},
  {.flag = "jwt-claim-header", .json_key = "jwt.claim_headers", .metavar = "CLAIM=HEADER", .default_text = "none", .help = "forward a claim as a request header (client copies removed); repeatable", .json_kind = JsonKind::kStringList, .set = add_jwt_claim_header, .clear = [](Config& c) { c.jwt_claim_headers.clear(); }},
  {.flag = "listen-tls", .json_key = "listen_tls", .metavar = "HOST:PORT", .default_text = "none", .help = "address to accept TLS clients on; repeatable; needs --tls-cert", .json_kind = JsonKind::kCustom, .set = add_listen_tls, .clear = [](Config& c) { c.listen_tls.clear(); c.listen_tls_client_auth.clear(); }, .json_set = set_listen_tls_json},
  {.flag = "tls-cert", .json_key = "tls.certs", .metavar = "CERT.pem:KEY.pem", .default_text = "none", .help = "certificate chain and key (RSA or ECDSA); repeatable, picked by SNI, the first is the default", .json_kind = JsonKind::kStringList, .set = add_tls_cert, .clear = [](Config& c) { c.tls_certs.clear(); }},
  {.flag = "tls-min-version", .json_key = "tls.min_version", .metavar = "1.2|1.3", .default_text = "1.2", .help = "lowest TLS version accepted", .json_kind = JsonKind::kString, .set = set_tls_min_version},
  {.flag = "tls-ciphers", .json_key = "tls.ciphers", .metavar = "LIST", .default_text = "ECDHE with AES-GCM and CHACHA20-POLY1305", .help = "TLS 1.2 cipher list (OpenSSL syntax, ECDHE AEAD ciphers only)", .json_kind = JsonKind::kString, .set = set_cipher_list<&Config::tls_ciphers>},
  {.flag = "tls-ciphersuites", .json_key = "tls.ciphersuites", .metavar = "LIST", .default_text = "OpenSSL's TLS 1.3 suites", .help = "TLS 1.3 cipher suites (OpenSSL syntax)", .json_kind = JsonKind::kString, .set = set_cipher_list<&Config::tls_ciphersuites>},
  {.flag = "tls-client-ca", .json_key = "tls.client_ca", .metavar = "FILE", .default_text = "none", .help = "CA certificates that client certificates must chain to (mTLS)", .json_kind = JsonKind::kString, .set = set_readable_file<&Config::tls_client_ca>},
  {.flag = "tls-client-auth", .json_key = "tls.client_auth", .metavar = "none|optional|required", .default_text = "none", .help = "ask TLS clients for a certificate; needs --tls-client-ca", .json_kind = JsonKind::kString, .set = set_tls_client_auth},
  {.flag = "tls-client-subject-header", .json_key = "tls.client_subject_header", .metavar = "NAME", .default_text = "X-Client-Cert-Subject", .help = "request header carrying the verified client certificate subject (client copies removed); \"\" = not forwarded", .json_kind = JsonKind::kString, .set = set_tls_client_subject_header},
  {.flag = "tls-ticket-key-file", .json_key = "tls.ticket_key_file", .metavar = "FILE", .default_text = "random keys, rotated hourly", .help = "session ticket keys, 80 bytes each (nginx format), the first encrypts; share it to resume across gateways", .json_kind = JsonKind::kString, .set = set_readable_file<&Config::tls_ticket_key_file>},
  {.flag = "upstream-ca", .json_key = "upstream_ca", .metavar = "FILE", .default_text = "system CA bundle", .help = "CA certificates for https:// upstreams (replaces the system bundle)", .json_kind = JsonKind::kString, .set = set_readable_file<&Config::upstream_ca>},
  {.flag = "hsts", .json_key = "hsts", .metavar = "SECONDS", .default_text = "off", .help = "add Strict-Transport-Security: max-age=SECONDS to responses on TLS listeners", .json_kind = JsonKind::kScalar, .set = set_count<&Config::hsts_s, 0, kU32Max>},
  {.flag = "redirect-https", .json_key = "redirect_https", .default_text = "off", .help = "answer plaintext listeners with a redirect to the TLS listener", .json_kind = JsonKind::kBool, .set = set_bool<&Config::redirect_https>},
  {.flag = "cache", .json_key = "cache_size", .metavar = "SIZE", .default_text = "off", .help = "RFC 9111 response cache of SIZE bytes for every route (per route: \"cache\" in the file)", .json_kind = JsonKind::kScalar, .set = set_cache_size},
  {.flag = "help", .short_flag = 'h', .default_text = "", .help = "print this help and exit", .set = set_nothing, .action = Action::kHelp},
  {.flag = "version", .default_text = "", .help = "print the version and exit", .set = set_nothing, .action = Action::kVersion},
};

constexpr RouteField kRouteFields[] = {
  {.json_key = "prefix", .json_kind = JsonKind::kString, .set = set_route_prefix},
  {.json_key = "upstreams", .json_kind = JsonKind::kCustom, .json_set = set_route_upstreams_json},
  {.json_key = "hosts", .json_kind = JsonKind::kStringList, .set = add_route_host, .clear = [](Route& r) { r.hosts.clear(); }},
  {.json_key = "methods", .json_kind = JsonKind::kStringList, .set = add_route_method, .clear = [](Route& r) { r.methods.clear(); }},
  {.json_key = "headers", .json_kind = JsonKind::kStringMap, .set = add_route_header, .clear = [](Route& r) { r.headers.clear(); }},
  {.json_key = "max_body_size", .json_kind = JsonKind::kScalar, .set = set_size<Route, &Route::max_body_size, std::numeric_limits<uint64_t>::max()>},
  {.json_key = "auth", .json_kind = JsonKind::kString, .set = set_access_auth<Route>},
  {.json_key = "scopes", .json_kind = JsonKind::kStringList, .set = add_access_scope<Route>, .clear = [](Route& r) { r.scopes.clear(); }},
  {.json_key = "claims", .json_kind = JsonKind::kStringMap, .set = add_access_claim<Route>, .clear = [](Route& r) { r.claims.clear(); }},
  {.json_key = "rate_limits", .json_kind = JsonKind::kStringList, .set = add_access_rate_limit<Route>, .clear = [](Route& r) { r.rate_limits.clear(); }},
  // Traffic management (issue 14, traffic.cc).
  {.json_key = "balance", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_balance_json>},
  {.json_key = "health_check", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_health_check_json>},
  {.json_key = "outlier", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_outlier_json>},
  {.json_key = "retries", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_retries_json>},
  {.json_key = "circuit_breaker", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_circuit_breaker_json>},
  {.json_key = "dns_refresh", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_dns_refresh_json>},
  {.json_key = "dns_max_addresses", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Route, set_dns_max_addresses_json>},
  {.json_key = "cache.enabled", .json_kind = JsonKind::kBool, .set = set_route_cache_bool<&RouteCache::enabled>},
  {.json_key = "cache.size", .json_kind = JsonKind::kScalar, .set = set_route_cache_size},
  {.json_key = "cache.default_ttl", .json_kind = JsonKind::kScalar, .set = set_route_cache_duration<&RouteCache::default_ttl_ms>},
  {.json_key = "cache.max_ttl", .json_kind = JsonKind::kScalar, .set = set_route_cache_duration<&RouteCache::max_ttl_ms>},
  {.json_key = "cache.key_headers", .json_kind = JsonKind::kStringList, .set = add_route_cache_key_header, .clear = [](Route& r) { r.cache.key_headers.clear(); }},
  {.json_key = "cache.allow_authorized", .json_kind = JsonKind::kBool, .set = set_route_cache_bool<&RouteCache::allow_authorized>},
  {.json_key = "client_subjects", .json_kind = JsonKind::kStringList, .set = add_access_client_subject<Route>, .clear = [](Route& r) { r.client_subjects.clear(); }},
};

// The gateway's own keys of an "aggregates" element; the rest belongs to agg::parse_endpoint.
constexpr AggregateField kAggregateFields[] = {
  {.json_key = "deadline", .json_kind = JsonKind::kString, .set = set_aggregate_deadline},
  {.json_key = "headers", .json_kind = JsonKind::kStringList, .set = add_aggregate_header, .clear = [](Aggregate& a) { a.pass_headers.clear(); }},
  {.json_key = "auth", .json_kind = JsonKind::kString, .set = set_access_auth<Aggregate>},
  {.json_key = "scopes", .json_kind = JsonKind::kStringList, .set = add_access_scope<Aggregate>, .clear = [](Aggregate& a) { a.scopes.clear(); }},
  {.json_key = "claims", .json_kind = JsonKind::kStringMap, .set = add_access_claim<Aggregate>, .clear = [](Aggregate& a) { a.claims.clear(); }},
  {.json_key = "rate_limits", .json_kind = JsonKind::kStringList, .set = add_access_rate_limit<Aggregate>, .clear = [](Aggregate& a) { a.rate_limits.clear(); }},
  // Traffic management (issue 14): a backend is one instance, so no balance or retries keys.
  {.json_key = "health_check", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Aggregate, set_health_check_json>},
  {.json_key = "outlier", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Aggregate, set_outlier_json>},
  {.json_key = "circuit_breaker", .json_kind = JsonKind::kCustom, .json_set = traffic_json<Aggregate, set_circuit_breaker_json>},
  {.json_key = "client_subjects", .json_kind = JsonKind::kStringList, .set = add_access_client_subject<Aggregate>, .clear = [](Aggregate& a) { a.client_subjects.clear(); }},
};
// clang-format on

}  // namespace

std::span<const Option> options() { return kOptions; }
std::span<const RouteField> route_fields() { return kRouteFields; }
std::span<const AggregateField> aggregate_fields() { return kAggregateFields; }

bool valid_route_prefix(std::string_view prefix, std::string& error) {
  if (prefix.empty() || prefix[0] != '/') {
    error = "route prefix '" + std::string(prefix) + "' must start with '/'";
    return false;
  }
  if (!visible_ascii(prefix) || prefix.find_first_of("?#") != std::string_view::npos) {
    error = "route prefix '" + std::string(prefix) + "' may not contain spaces, controls, '?' or '#'";
    return false;
  }
  return true;
}

}  // namespace ringway::config::detail
