// The validated, immutable configuration: built once at start-up from the JSON file (--config)
// and the command-line flags (which override the file), then shared read-only by every worker.
// One schema for both sources; see config::load().
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ringway::agg {
struct Endpoint;  // include/ringway/agg/endpoint.h
}

namespace ringway::config {

// A resolved socket address with its text form.
struct Address {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host;   // as written ("127.0.0.1", "::1", "localhost")
  uint16_t port = 0;
};

// One upstream URL of a route, e.g. http://127.0.0.1:8001/v1
// Per-upstream TLS settings (issue 13), from {"url": "https://...", "tls": {...}} in the JSON
// config; absent = the global ones (--upstream-ca, verify, no client certificate).
struct UpstreamTls {
  std::string ca;           // replaces --upstream-ca / the system bundle for this upstream
  std::string server_name;  // SNI and the name checked; "" = the URL's host
  std::string cert;         // client certificate (mTLS origination), PEM with chain
  std::string key;
  bool verify = true;       // false: no certificate or name check (warned about at start)
};

struct Target {
  Address address;
  std::string authority;  // "host:port" as written in the URL (port omitted if it was omitted)
  std::string base_path;  // URL path without trailing '/', "" when the URL has none
  bool tls = false;       // https:// (default port 443); address.host is the SNI/verified name
  std::shared_ptr<const UpstreamTls> tls_settings;  // nullptr: the global settings
  uint32_t weight = 1;    // {"url": ..., "weight": N} (issue 14): share of its route's traffic
  // DNS re-resolution (issue 14): a host name on a route with dns_refresh is expanded into
  // dns_max_addresses slots (dns true, dns_slot 0..n-1) whose addresses the resolver thread
  // publishes (upstream/dns.h); address is then only the start-time answer, if any.
  bool dns = false;
  uint8_t dns_slot = 0;
  std::string resolve_error;  // the name did not resolve at load (only with dns_refresh allowed)
};

// Upstream traffic management of a route or aggregate endpoint (issue 14), validated
// (src/config/traffic.cc); server.cc turns it into upstream::TrafficOptions. Plain data: the
// config library does not depend on the upstream one.
struct TrafficSettings {
  std::string balance;                  // "" (Config::balance), round_robin, least_request, random, hash
  std::string hash_source;              // balance hash: header, cookie or ip
  std::string hash_name;                // the header or cookie name
  bool health_check = false;            // "health_check" given: active checks on
  std::string check_path = "/healthz";
  uint32_t check_interval_ms = 1'000;
  uint32_t check_timeout_ms = 500;
  uint32_t check_healthy = 2;
  uint32_t check_unhealthy = 3;
  uint16_t check_expect[4][2] = {{200, 399}};  // inclusive ranges
  uint8_t check_expect_count = 1;
  uint32_t slow_start_ms = 0;
  uint32_t outlier_failures = 0;        // 0: no ejection ("outlier" not given)
  uint32_t base_ejection_ms = 5'000;
  uint32_t max_ejected_percent = 50;
  uint32_t retry_attempts = 1;          // tries in all, the first included
  uint8_t retry_on = 0;                 // bits in upstream::RetryOn's order
  uint32_t per_try_timeout_ms = 0;      // 0: the upstream response timeout
  uint32_t retry_budget_percent = 20;
  uint32_t max_connections = UINT32_MAX;  // circuit breaker per instance; none unless configured
  uint32_t max_pending = UINT32_MAX;
  uint32_t max_requests = UINT32_MAX;
  uint32_t dns_refresh_ms = 0;          // 0: names resolved once at load (else --dns-refresh fills it)
  uint32_t dns_max_addresses = 4;       // instance slots per re-resolved name
};

// --tls-cert CERT.pem:KEY.pem (issue 13).
struct TlsCertFiles {
  std::string cert;
  std::string key;
};

struct HeaderMatch {
  std::string name;   // case-insensitive
  std::string value;  // exact match
};

struct NameValue {
  std::string name;
  std::string value;
};

// Who may call a route or an aggregate endpoint, and how often. Kept as text:
// src/filter/builtin.cc turns it into filter objects, so this library does not depend on the
// filter libraries.
struct Access {
  // Authentication (issue 6).
  std::string auth;                   // "" (use Config::auth), none, api-key, jwt, any or mtls
  std::vector<std::string> scopes;    // JWT scopes all required here
  std::vector<NameValue> claims;      // JWT claims required (value "" = only present)
  // Rate limits scoped to this route or endpoint (issue 5): SPEC text as for --rate-limit,
  // without route=.
  std::vector<std::string> rate_limits;
  // mTLS (issue 13): subjects an "auth": "mtls" route admits (exact RFC 2253 text); empty = any.
  std::vector<std::string> client_subjects;
};

// A route's response cache (issue 16): "cache": {"enabled", "size", "default_ttl", "max_ttl",
// "key_headers", "allow_authorized"} in the route's JSON object; --cache SIZE turns it on for
// every route that does not say "enabled": false. src/engine/proxy/cache_io.cc uses it.
struct RouteCache {
  bool configured = false;            // some "cache" key was given for this route
  bool enabled = true;                // "enabled" (when configured or --cache is given)
  uint64_t size = 0;                  // bytes of a store of the route's own; 0: the --cache store
  uint32_t default_ttl_ms = 0;        // heuristic freshness (RFC 9111 4.2.2); 0: off
  uint32_t max_ttl_ms = 0;            // cap on any freshness lifetime; 0: none
  std::vector<std::string> key_headers;  // request fields appended to the cache key
  bool allow_authorized = true;       // store responses to Authorization requests when 3.5 allows
};

struct Route : Access {
  std::string prefix;                 // path prefix; longest match wins
  std::vector<std::string> hosts;     // empty: any host; else exact, case-insensitive (port ignored)
  std::vector<std::string> methods;   // empty: any method; else exact method names
  std::vector<HeaderMatch> headers;   // all must match
  std::vector<Target> targets;        // balanced per traffic.balance
  uint64_t max_body_size = 0;         // 0: the global max_body_size
  TrafficSettings traffic;            // issue 14
  RouteCache cache;
};

// One aggregate endpoint (issue 7): "aggregates": [{agg::parse_endpoint's object, plus the
// gateway's own keys: "deadline": DUR, "headers": [names of client fields passed to every leg],
// and the Access keys "auth", "scopes", "claims", "rate_limits"}], or --aggregate for the simple
// case. Filters see it as route index routes.size() + its index in Config::aggregates.
struct Aggregate : Access {
  std::shared_ptr<const agg::Endpoint> endpoint;  // validated by agg::parse_endpoint
  uint32_t deadline_ms = 3'000;                   // whole fan-out; late legs fail with 504
  std::vector<std::string> pass_headers;          // client header names copied to each leg
  std::vector<Target> targets;                    // one per backend, in backend order
  TrafficSettings traffic;                        // issue 14: health_check, outlier, circuit_breaker
};

struct Config {
  unsigned threads = 0;                       // 0: online CPUs
  std::vector<Address> listen;                // default 0.0.0.0:8080
  bool has_admin = false;
  Address admin_listen;
  uint32_t dns_refresh_ms = 0;                // --dns-refresh: default for routes that do not say
  bool has_dns_server = false;                // --dns-server HOST:PORT (else resolv.conf)
  Address dns_server;
  std::vector<Route> routes;
  std::vector<Aggregate> aggregates;          // tried before routes
  std::vector<NameValue> add_headers;         // --add-header NAME:VALUE
  bool preserve_host = false;
  std::string balance = "least_request";      // --balance: routes that do not say (issue 14)

  // Limits on what a client controls.
  uint64_t max_body_size = 64ull << 20;       // 413 above it (per route overridable)
  uint32_t max_request_line = 8 * 1024;       // 414
  uint32_t max_head_bytes = 16 * 1024;        // 431
  uint16_t max_header_count = 100;            // 431
  uint32_t max_connections = 65536;           // per worker; accepts beyond it are closed

  // Timeouts in milliseconds.
  uint32_t client_header_timeout_ms = 10'000;    // whole head must arrive (slowloris)
  uint32_t client_keepalive_timeout_ms = 60'000; // idle client connection between requests
  uint32_t body_timeout_ms = 30'000;             // no body progress in either direction
  uint32_t upstream_connect_timeout_ms = 5'000;
  uint32_t upstream_response_timeout_ms = 60'000;  // request sent -> response head: 504
  uint32_t upstream_idle_timeout_ms = 4'000;       // pooled idle upstream conn (below common 5 s)
  uint32_t drain_timeout_ms = 10'000;

  uint32_t upstream_keepalive = 64;          // idle pooled conns per target per worker; 0: no reuse

  std::string access_log = "-";              // path, "-" (stdout) or "off"

  // Rate limiting (issue 5). Specs are validated by filter::build_builtin_filters().
  std::vector<std::string> rate_limits;      // --rate-limit SPEC (repeatable)
  uint32_t rate_limit_keys = 65536;          // --rate-limit-keys: key table capacity per spec
  bool rate_limit_headers = false;           // fields on allowed responses too
  bool rate_limit_legacy_headers = false;    // X-RateLimit-* instead of RateLimit/-Policy

  // Cluster-scoped rate limits (issue 15): the Redis holding their buckets. The policy text is
  // parsed, and the whole set checked against the specs, by filter::build_builtin_filters().
  bool has_redis = false;                    // --redis given
  Address redis_address;                     // --redis HOST:PORT
  std::string redis_unix_path;               // --redis unix:PATH (then redis_address is unused)
  std::string redis_failure = "deny";        // --redis-failure deny|allow|local[:N]
  std::string redis_password;                // "redis": {"password"}: file only, argv is public
  uint32_t redis_database = 0;               // "redis": {"database"}

  // API keys (issue 6). NAME=KEY text: the keys are hashed when the filter is built.
  std::vector<std::string> api_keys;         // --api-key NAME=KEY (repeatable)
  std::string api_keys_file;                 // --api-keys-file
  std::string api_key_header = "X-API-Key";  // --api-key-header
  std::string api_key_query;                 // --api-key-query ("" = not looked up)

  // JWT (issue 6).
  std::string jwt_jwks;                      // --jwt-jwks FILE
  std::vector<std::string> jwt_keys;         // --jwt-key KID=pem:FILE|secret:FILE (repeatable)
  uint32_t jwt_leeway_s = 60;                // --jwt-leeway
  std::string jwt_issuer;                    // --jwt-issuer ("" = not checked)
  std::vector<std::string> jwt_audiences;    // --jwt-audience (repeatable; empty = not checked)
  std::vector<std::string> jwt_claim_headers;  // --jwt-claim-header CLAIM=HEADER (repeatable)

  // TLS (issue 13). Files are checked readable here; tls::ServerContext::build loads them.
  std::vector<Address> listen_tls;           // --listen-tls HOST:PORT (repeatable)
  // Parallel to listen_tls: that listener's client_auth from the JSON object form
  // ({"address", "client_auth"}), "" = tls_client_auth.
  std::vector<std::string> listen_tls_client_auth;
  std::vector<TlsCertFiles> tls_certs;       // --tls-cert CERT:KEY (repeatable; first = default)
  std::string tls_min_version = "1.2";       // --tls-min-version 1.2|1.3
  std::string tls_ciphers;                   // --tls-ciphers (TLS 1.2 list), "" = built-in
  std::string tls_ciphersuites;              // --tls-ciphersuites (TLS 1.3), "" = built-in
  std::string tls_client_ca;                 // --tls-client-ca FILE
  std::string tls_client_auth = "none";      // --tls-client-auth none|optional|required
  std::string tls_client_subject_header = "X-Client-Cert-Subject";  // "" = not forwarded
  std::string tls_ticket_key_file;           // --tls-ticket-key-file FILE (80-byte keys)
  std::string upstream_ca;                   // --upstream-ca FILE (replaces the system bundle)
  uint32_t hsts_s = 0;                       // --hsts SECONDS (0: no Strict-Transport-Security)
  bool redirect_https = false;               // --redirect-https: plaintext listeners redirect

  std::string auth = "none";                 // --auth: mode of routes that set none of their own
  uint64_t cache_size = 0;                   // --cache SIZE: one store for every route; 0: off
  bool demo = false;
  bool test_only = false;                    // -t: validate and exit
  bool sqpoll = false;                       // opt-in, costs a core
  bool splice = true;                        // Content-Length bodies via splice(2) on plain legs
  uint64_t splice_min_bytes = 32 * 1024;     // smaller remaining bodies take the copy path
                                             // (crossover measured in bench/splice)
};

// Result of loading: either a config or a human-readable error ("--route: ...").
struct LoadResult {
  bool ok = false;
  Config config;
  std::string error;
  bool exit_now = false;   // --help / --version printed: exit 0
};

// Parses argv (and the --config file it names, flags overriding the file) and validates it.
// Prints --help/--version text to stdout itself.
LoadResult load(int argc, char** argv);

// Parses a JSON config document into cfg (used by load(); exposed for tests).
bool apply_json(const std::string& json_text, Config& cfg, std::string& error);

// Parses "http://host:port/path" or "https://..." (Target::tls, port 443 by default) into a
// Target (resolving host). False with error on bad input.
bool parse_target_url(const std::string& url, Target& out, std::string& error);
// The same, but a host name that does not resolve now is kept (Target::resolve_error set, no
// address): routes' upstreams, which may turn out to be re-resolved (dns_refresh, issue 14).
bool parse_target_url_deferred(const std::string& url, Target& out, std::string& error);

// Parses "HOST:PORT" / "[v6]:PORT" / ":PORT" into an Address.
bool parse_host_port(const std::string& text, Address& out, std::string& error);

}  // namespace ringway::config
