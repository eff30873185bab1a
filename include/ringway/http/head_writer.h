// Serializes every head the gateway sends, from parsed fields ("rebuild, never relay raw header
// bytes"): the request head sent upstream (forwarded requests and aggregate legs alike), the
// response head relayed downstream, and the heads of the gateway's own replies (problem+json,
// admin pages, merged aggregates). Pure functions writing into caller-owned buffers; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "ringway/http/request.h"
#include "ringway/http/response.h"

namespace ringway::http {

// RFC 9110 7.6.1: the fixed hop-by-hop field names (Connection, Keep-Alive, Proxy-Connection, TE,
// Trailer, Upgrade), never forwarded nor stored. The one list: the cache uses it too.
bool is_hop_by_hop(std::string_view name);

// Edits a filter chain asks for on the forwarded request (e.g. X-Consumer, claim headers).
// Removals apply to the client's fields; additions are written after the client's fields and
// before --add-header fields.
struct HeaderEdits {
  static constexpr uint8_t kMax = 16;
  std::string_view remove[kMax];
  uint8_t remove_count = 0;
  Header add[kMax];
  uint8_t add_count = 0;
  // A query parameter to drop from the forwarded request-target (e.g. an API key passed as
  // ?api_key=...); every other byte of the query is kept as received.
  std::string_view remove_query_param;
  bool push_remove(std::string_view name) {
    if (remove_count == kMax) return false;
    remove[remove_count++] = name;
    return true;
  }
  bool push_add(std::string_view name, std::string_view value) {
    if (add_count == kMax) return false;
    add[add_count++] = Header{name, value};
    return true;
  }
};

struct UpstreamHeadParams {
  std::string_view base_path;        // upstream URL path without trailing '/' ("" for none)
  std::string_view path_remainder;   // request path after the route prefix ("" or starts with '/')
  std::string_view authority;        // upstream "host[:port]", used for Host unless preserve_host
  bool preserve_host = false;
  std::string_view client_addr;      // client IP text, appended to X-Forwarded-For
  std::string_view proto = "http";   // X-Forwarded-Proto
  const HeaderEdits* edits = nullptr;
  std::span<const Header> add_headers;  // --add-header: last, replacing client fields of that name
  // Aggregate legs: a GET of their own path with no body, passing only the client fields the
  // endpoint names (everything else above applies unchanged: query-parameter removal, filter
  // edits, X-Forwarded-*, add_headers).
  std::string_view method;              // "" = the request's method
  std::span<const std::string> pass_only;  // non-empty: only these client fields pass
  bool no_body = false;                 // the request's body is not forwarded
};

// Writes the upstream request head: request line with the rewritten path and the byte-exact query,
// the client's fields minus hop-by-hop ones (Connection and what it names, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade), minus Host, Expect and the client's framing fields,
// then Host, exactly one framing field (Content-Length or Transfer-Encoding: chunked), the
// X-Forwarded-* fields, filter edits and add_headers. Returns bytes written, 0 if cap is too small.
size_t write_upstream_head(char* out, size_t cap, const Request& req, const UpstreamHeadParams& p);

struct DownstreamHeadParams {
  bool close = false;                   // add "Connection: close"
  bool keep_alive = false;              // else add "Connection: keep-alive" (HTTP/1.0 client that
                                        // may keep the connection, RFC 9112 C.2.2)
  std::span<const Header> add_headers;  // gateway response fields (e.g. rate-limit), appended
  bool dechunk = false;  // HTTP/1.0 client: drop Transfer-Encoding; the body goes out decoded and
                         // ends with the connection (RFC 9112 6.1: no chunked to 1.0 recipients)
};

// Writes the response head for the client: status line, the upstream's fields minus hop-by-hop
// ones, the upstream's framing field unchanged, then Connection: close if asked. 0 if too small.
size_t write_downstream_head(char* out, size_t cap, const Response& resp,
                             const DownstreamHeadParams& p);

// The head of a response the gateway makes itself: problem+json errors, admin pages, merged
// aggregates. Content-Length is always given (for HEAD too: the length a GET would have had,
// RFC 9110 8.6).
struct LocalHead {
  uint16_t status = 200;
  std::string_view content_type;  // none if empty
  uint64_t content_length = 0;
  bool close = false;        // "Connection: close"
  bool keep_alive = false;   // "Connection: keep-alive": an HTTP/1.0 client may keep the connection
                             // only if told so (RFC 9112 C.2.2)
  std::span<const Header> headers;  // more fields, written as given after the fixed ones
};

// Writes h; returns bytes written, 0 if cap is too small.
size_t write_local_head(char* out, size_t cap, const LocalHead& h);
// Appends h to out (for replies whose size is only known at run time).
void append_local_head(std::string& out, const LocalHead& h);

// A complete RFC 9457 application/problem+json reply (head and body). `detail` is JSON-escaped.
// extra_headers are written as given (e.g. Retry-After, WWW-Authenticate). Returns bytes written
// (truncating detail if needed to fit; cap >= 512 always suffices for a short detail).
size_t write_problem(char* out, size_t cap, uint16_t status, std::string_view detail, bool close,
                     std::span<const Header> extra_headers = {});

// Reason phrase for a status code ("Unknown" for unlisted codes).
std::string_view reason_phrase(uint16_t status);

}  // namespace ringway::http
