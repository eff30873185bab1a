// llhttp (strict mode) glue. The engine hands parse_head() one complete head; llhttp validates the
// syntax while the callbacks below fill the Request/Response views and apply the checks llhttp
// 8.1.0 lacks. llhttp is paused in on_headers_complete, so it never reads a body byte during
// parse_head; it is resumed only for chunked bodies, whose framing it validates.
#include "ringway/http/parser.h"

#include <llhttp.h>

#include <cstring>

namespace ringway::http {
namespace {

static_assert(sizeof(llhttp_t) <= 128, "llhttp_t must fit RequestParser::llhttp_");
static_assert(alignof(llhttp_t) <= 8, "llhttp_t alignment");

constexpr std::string_view kSlash = "/";

// Per-parse_head state, on the caller's stack; the parser's CallbackState points at it while a
// head is parsed and is null while a body is parsed (so trailer fields are ignored and never touch
// a Request that may be gone by then).
struct HeadCtx {
  bool is_request;
  uint16_t fail_status;  // 0: no error recorded by a callback
  const char* fail_detail;

  Header* headers;
  uint16_t* header_count;
  uint16_t max_headers;
  std::string_view* conn_tokens;
  uint8_t* conn_token_count;

  std::string_view method;
  std::string_view url;
  std::string_view status;
  std::string_view field;
  const char* value_at;
  size_t value_len;
  bool value_started;
  bool headers_done;

  uint8_t host_count;
  uint8_t cl_count;
  uint8_t te_count;
  bool conn_close;
  bool conn_keep_alive;
  bool expect_continue;
  bool te_final_chunked;
  std::string_view host;
  uint64_t content_length;
};

inline detail::CallbackState* cb_of(llhttp_t* p) {
  return static_cast<detail::CallbackState*>(p->data);
}
inline HeadCtx* ctx_of(llhttp_t* p) { return static_cast<HeadCtx*>(cb_of(p)->head); }

int fail(HeadCtx* c, uint16_t status, const char* detail) {
  if (c->fail_status == 0) {
    c->fail_status = c->is_request ? status : 502;
    c->fail_detail = detail;
  }
  return HPE_USER;
}

inline bool is_ows(char ch) { return ch == ' ' || ch == '\t'; }

std::string_view trim_ows(std::string_view v) {
  size_t b = 0, e = v.size();
  while (b < e && is_ows(v[b])) ++b;
  while (e > b && is_ows(v[e - 1])) --e;
  return v.substr(b, e - b);
}

// A span callback may be split only at buffer ends; within one head it arrives in one piece, but
// extend contiguous pieces anyway so that correctness does not depend on that.
inline void span_append(std::string_view& s, const char* at, size_t n) {
  if (s.data() != nullptr && s.data() + s.size() == at) {
    s = std::string_view(s.data(), s.size() + n);
  } else {
    s = std::string_view(at, n);
  }
}

// RFC 3986 3.2.2 reg-name characters (unreserved / sub-delims; '%' checked separately).
struct HostTable {
  bool ok[256] = {};
  constexpr HostTable() {
    for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
    for (int c = '0'; c <= '9'; ++c) ok[c] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=")) ok[static_cast<unsigned char>(c)] = true;
  }
};
constexpr HostTable kHostChars;

inline bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 9110 7.2: Host = uri-host [ ":" port ]. An empty value is allowed (RFC 9112 3.2).
bool valid_host(std::string_view h) {
  const size_t n = h.size();
  if (n == 0) return true;
  size_t i = 0;
  if (h[0] == '[') {  // IP-literal: hex, ':' and '.' (IPv4-mapped), no zone ids
    i = 1;
    while (i < n && (is_hex(h[i]) || h[i] == ':' || h[i] == '.')) ++i;
    if (i == 1 || i >= n || h[i] != ']') return false;
    ++i;
  } else {
    while (i < n && h[i] != ':') {
      const char c = h[i];
      if (c == '%') {
        if (i + 2 >= n || !is_hex(h[i + 1]) || !is_hex(h[i + 2])) return false;
        i += 3;
        continue;
      }
      if (!kHostChars.ok[static_cast<unsigned char>(c)]) return false;
      ++i;
    }
    if (i == 0) return false;  // ":80"
  }
  if (i == n) return true;
  if (h[i] != ':') return false;
  const size_t digits = n - i - 1;
  if (digits == 0 || digits > 5) return false;
  for (size_t k = i + 1; k < n; ++k) {
    if (h[k] < '0' || h[k] > '9') return false;
  }
  return true;
}

// RFC 9110 8.6: Content-Length = 1*DIGIT; a list ("5, 5") is rejected rather than collapsed.
bool parse_content_length(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 19) return false;  // 19 digits cannot overflow uint64_t
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

// RFC 9110 7.6.1: Connection lists options; "close"/"keep-alive" are recorded, anything else names
// a field that is hop-by-hop for this message.
int parse_connection(HeadCtx* c, std::string_view v) {
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string_view::npos) comma = v.size();
    const std::string_view tok = trim_ows(v.substr(pos, comma - pos));
    pos = comma + 1;
    if (tok.empty()) continue;
    if (iequals(tok, "close")) {
      c->conn_close = true;
    } else if (iequals(tok, "keep-alive")) {
      c->conn_keep_alive = true;
    } else {
      if (*c->conn_token_count == Request::kMaxConnectionTokens) {
        return fail(c, 400, "too many Connection options");
      }
      c->conn_tokens[(*c->conn_token_count)++] = tok;
    }
  }
  return 0;
}

// ---- llhttp callbacks ----

int on_method(llhttp_t* p, const char* at, size_t n) {
  HeadCtx* c = ctx_of(p);
  if (c != nullptr) span_append(c->method, at, n);
  return 0;
}

int on_url(llhttp_t* p, const char* at, size_t n) {
  HeadCtx* c = ctx_of(p);
  if (c != nullptr) span_append(c->url, at, n);
  return 0;
}

int on_status(llhttp_t* p, const char* at, size_t n) {
  HeadCtx* c = ctx_of(p);
  if (c != nullptr) span_append(c->status, at, n);
  return 0;
}

int on_header_field(llhttp_t* p, const char* at, size_t n) {
  HeadCtx* c = ctx_of(p);
  if (c != nullptr) span_append(c->field, at, n);
  return 0;
}

int on_header_field_complete(llhttp_t* p) {
  HeadCtx* c = ctx_of(p);
  if (c == nullptr) return 0;  // trailer field
  // RFC 9110 5.1: field-name = token, so at least one character.
  if (c->field.empty()) return fail(c, 400, "empty field name");
  // Underscores are legal tchars but collide with '-' in CGI-style header mapping; rejecting them
  // closes that header-smuggling path (as nginx and Envoy do by default).
  if (c->is_request) {
    for (char ch : c->field) {  // names are short: a loop beats a memchr call
      if (ch == '_') return fail(c, 400, "underscore in field name");
    }
  }
  if (*c->header_count >= c->max_headers) return fail(c, 431, "too many header fields");
  c->value_at = nullptr;
  c->value_len = 0;
  c->value_started = false;
  return 0;
}

int on_header_value(llhttp_t* p, const char* at, size_t n) {
  HeadCtx* c = ctx_of(p);
  // llhttp reports an empty value as a zero-length span placed after the line end: skip it.
  if (c == nullptr || n == 0) return 0;
  if (c->value_started) {
    // llhttp reports an obs-fold continuation as a second, non-contiguous value span.
    // RFC 9112 5.2: a server MUST reject obs-fold (or replace it); we reject.
    if (c->value_at + c->value_len != at) return fail(c, 400, "obsolete line folding");
    c->value_len += n;
    return 0;
  }
  // An obs-fold after an empty value arrives as the first span: what precedes a genuine first
  // value (after OWS) is the colon.
  const char* q = at - 1;
  while (is_ows(*q)) --q;
  if (*q != ':') return fail(c, 400, "obsolete line folding");
  c->value_started = true;
  c->value_at = at;
  c->value_len = n;
  return 0;
}

int on_header_value_complete(llhttp_t* p) {
  HeadCtx* c = ctx_of(p);
  if (c == nullptr) return 0;
  const std::string_view name = c->field;
  const std::string_view value =
      c->value_at != nullptr ? trim_ows(std::string_view(c->value_at, c->value_len))
                             : std::string_view();
  c->headers[(*c->header_count)++] = Header{name, value};
  c->field = {};

  switch (name.size()) {
    case 4:
      if (c->is_request && iequals(name, "host")) {
        // RFC 9112 3.2: more than one Host, or an invalid value, is a 400.
        if (++c->host_count > 1) return fail(c, 400, "more than one Host field");
        if (!valid_host(value)) return fail(c, 400, "invalid Host");
        c->host = value;
      }
      break;
    case 6:
      if (c->is_request && iequals(name, "expect")) {
        // RFC 9110 10.1.1: only 100-continue is defined; ignored in HTTP/1.0 requests.
        if (!iequals(value, "100-continue")) return fail(c, 417, "unsupported expectation");
        if (p->http_minor >= 1) c->expect_continue = true;
      }
      break;
    case 10:
      if (iequals(name, "connection")) return parse_connection(c, value);
      break;
    case 14:
      if (iequals(name, "content-length")) {
        if (++c->cl_count > 1) return fail(c, 400, "more than one Content-Length");
        if (!parse_content_length(value, &c->content_length)) {
          return fail(c, 400, "invalid Content-Length");
        }
        // RFC 9112 6.1: a message with both is a smuggling vector; we never forward it.
        if (c->te_count > 0) return fail(c, 400, "ambiguous framing: Transfer-Encoding with Content-Length");
      }
      break;
    case 17:
      if (iequals(name, "transfer-encoding")) {
        ++c->te_count;
        if (c->is_request) {
          // RFC 9112 6.1: Transfer-Encoding was added in HTTP/1.1.
          if (p->http_minor == 0) return fail(c, 400, "Transfer-Encoding in an HTTP/1.0 request");
          if (c->cl_count > 0) return fail(c, 400, "ambiguous framing: Transfer-Encoding with Content-Length");
          // Only a single "chunked" is supported (RFC 9112 6.1: 501 for unknown codings).
          if (c->te_count > 1 || !iequals(value, "chunked")) {
            return fail(c, 501, "unsupported transfer coding");
          }
          c->te_final_chunked = true;
        } else {
          if (c->cl_count > 0) return fail(c, 502, "ambiguous framing from upstream");
          // RFC 9112 6.3 rule 4: only the final coding decides chunked framing.
          size_t comma = value.rfind(',');
          const std::string_view last =
              trim_ows(comma == std::string_view::npos ? value : value.substr(comma + 1));
          c->te_final_chunked = iequals(last, "chunked");
        }
      }
      break;
    default:
      break;
  }
  return 0;
}

int on_headers_complete(llhttp_t* p) {
  HeadCtx* c = ctx_of(p);
  if (c == nullptr) return 0;
  c->headers_done = true;
  // The gateway does not switch protocols: Upgrade is hop-by-hop and stripped, so the message is
  // an ordinary one and llhttp must not treat what follows as another protocol.
  p->upgrade = 0;
  return HPE_PAUSED;
}

// Stop at the end of a chunked body so bytes of a pipelined next message stay unconsumed.
int on_message_complete(llhttp_t*) { return HPE_PAUSED; }

// Chunk data, only collected by ResponseParser::feed_body_decoded. llhttp reports a span after
// it has read it and never looks back, so the data can be moved to the front of the buffer in
// place: the write position never passes the read position.
int on_body(llhttp_t* p, const char* at, size_t len) {
  detail::CallbackState* cb = cb_of(p);
  if (cb->body_out != nullptr) {
    std::memmove(cb->body_out + cb->body_len, at, len);
    cb->body_len += len;
  }
  return 0;
}

// Constant-initialized (designated initializers in declaration order), so parsers constructed
// during another translation unit's static initialization still see complete settings.
constexpr llhttp_settings_t kSettings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_method = on_method,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
};

inline llhttp_t* ll(void* state) { return static_cast<llhttp_t*>(state); }

void init_ctx(HeadCtx& c, const Limits& limits, bool is_request, Header* headers,
              uint16_t* header_count, std::string_view* tokens, uint8_t* token_count) {
  std::memset(static_cast<void*>(&c), 0, sizeof(c));
  c.is_request = is_request;
  c.headers = headers;
  c.header_count = header_count;
  c.max_headers = limits.max_header_count < kMaxHeaders ? limits.max_header_count : kMaxHeaders;
  c.conn_tokens = tokens;
  c.conn_token_count = token_count;
}

// Runs llhttp over one head. Returns the bytes llhttp consumed, or 0 with *err set.
size_t run_head(llhttp_t* p, HeadCtx& c, const char* data, size_t len, ParseError* err) {
  llhttp_reset(p);  // keeps p->data
  cb_of(p)->head = &c;
  const llhttp_errno_t rc = llhttp_execute(p, data, len);
  cb_of(p)->head = nullptr;
  if (c.fail_status != 0) {
    *err = ParseError{c.fail_status, c.fail_detail};
    return 0;
  }
  if (rc != HPE_PAUSED || !c.headers_done) {
    uint16_t status = c.is_request ? 400 : 502;
    const char* reason = llhttp_get_error_reason(p);
    if (rc == HPE_OK) reason = "incomplete head";
    if (c.is_request && rc == HPE_INVALID_METHOD) status = 501;
    // Codings after "chunked", or chunked twice: unsupported (see on_header_value_complete).
    if (c.is_request && rc == HPE_INVALID_TRANSFER_ENCODING) status = 501;
    *err = ParseError{status, reason != nullptr ? reason : "malformed head"};
    return 0;
  }
  return static_cast<size_t>(llhttp_get_error_pos(p) - data);
}

// Length of the first line without its line end; len if it has none. Empty lines before the
// request-line (RFC 9112 2.2, which llhttp skips) do not count as the first line.
size_t first_line_length(const char* data, size_t len) {
  while (len >= 2 && data[0] == '\r' && data[1] == '\n') {
    data += 2;
    len -= 2;
  }
  const void* nl = std::memchr(data, '\n', len);
  if (nl == nullptr) return len;
  size_t n = static_cast<size_t>(static_cast<const char*>(nl) - data);
  if (n > 0 && data[n - 1] == '\r') --n;
  return n;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

Method method_from_llhttp(uint8_t m) {
  switch (m) {
    case HTTP_GET: return Method::kGet;
    case HTTP_HEAD: return Method::kHead;
    case HTTP_POST: return Method::kPost;
    case HTTP_PUT: return Method::kPut;
    case HTTP_DELETE: return Method::kDelete;
    case HTTP_CONNECT: return Method::kConnect;
    case HTTP_OPTIONS: return Method::kOptions;
    case HTTP_TRACE: return Method::kTrace;
    case HTTP_PATCH: return Method::kPatch;
    default: return Method::kOther;
  }
}

// True if some segment of path is "." or ".." (RFC 3986 3.3), also spelled with %2e. The router
// matches prefixes on the raw path, so "/public/../admin/x" would match "/public/" here and then
// be normalised by the upstream into a path that another route (with other filters) guards.
bool has_dot_segment(std::string_view path) {
  if (path.find('.') == std::string_view::npos && path.find('%') == std::string_view::npos) return false;
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    int dots = 0;
    bool other = false;
    for (size_t j = i; j < end && !other;) {
      if (path[j] == '.') {
        ++dots;
        ++j;
      } else if (path[j] == '%' && j + 2 < end && path[j + 1] == '2' &&
                 (path[j + 2] == 'e' || path[j + 2] == 'E')) {
        ++dots;
        j += 3;
      } else {
        other = true;
      }
    }
    if (!other && (dots == 1 || dots == 2)) return true;
    i = end + 1;
  }
  return false;
}

// Splits the request-target (RFC 9112 3.2) into path/query/host. Returns nullptr when valid.
const char* split_target(Request& req) {
  const std::string_view t = req.target;
  if (t.empty()) return "empty request-target";
  // A fragment is never sent (RFC 9110 4.2.4 / RFC 9112 3.2); llhttp accepts one, we do not.
  if (std::memchr(t.data(), '#', t.size()) != nullptr) return "fragment in request-target";
  std::string_view rest;
  if (t[0] == '/') {
    rest = t;
  } else if (t == "*") {
    // RFC 9112 3.2.4: asterisk-form is only for OPTIONS.
    if (req.method != Method::kOptions) return "asterisk-form target without OPTIONS";
    req.path = t;
    return nullptr;
  } else {
    // RFC 9112 3.2.2 absolute-form: the target's authority replaces Host.
    size_t skip = 0;
    if (istarts_with(t, "http://")) {
      skip = 7;
    } else if (istarts_with(t, "https://")) {
      skip = 8;
    } else {
      return "invalid request-target";
    }
    const std::string_view after = t.substr(skip);
    size_t end = after.find_first_of("/?");
    if (end == std::string_view::npos) end = after.size();
    const std::string_view authority = after.substr(0, end);
    if (authority.empty() || !valid_host(authority)) return "invalid authority in request-target";
    req.host = authority;
    rest = after.substr(end);
  }
  const void* q = std::memchr(rest.data(), '?', rest.size());
  if (q != nullptr) {
    const size_t qi = static_cast<size_t>(static_cast<const char*>(q) - rest.data());
    req.path = rest.substr(0, qi);
    req.query = rest.substr(qi + 1);
    req.has_query = true;
  } else {
    req.path = rest;
  }
  if (req.path.empty()) req.path = kSlash;  // "http://h" or "http://h?q"
  if (has_dot_segment(req.path)) return "dot-segment in path";
  return nullptr;
}

}  // namespace

size_t find_head_end(const char* data, size_t len) {
  const char* p = data;
  const char* const end = data + len;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    if (nl == nullptr) return 0;
    const size_t rest = static_cast<size_t>(end - nl - 1);
    if (rest == 0) return 0;
    if (nl[1] == '\n') return static_cast<size_t>(nl + 2 - data);  // bare LF: llhttp rejects it
    if (nl[1] == '\r') {
      if (rest == 1) return 0;
      if (nl[2] == '\n') return static_cast<size_t>(nl + 3 - data);
    }
    p = nl + 1;
  }
  return 0;
}

ParseError check_incomplete_head(const char* data, size_t len, const Limits& limits) {
  // A request line of max_request_line bytes plus CRLF ends by index max_request_line + 1.
  const size_t probe = len < size_t{limits.max_request_line} + 2 ? len : size_t{limits.max_request_line} + 2;
  if (len > size_t{limits.max_request_line} + 1 && std::memchr(data, '\n', probe) == nullptr) {
    return ParseError{414, "request line too long"};
  }
  if (len >= limits.max_head_bytes) return ParseError{431, "request head too large"};
  return ParseError{0, {}};
}

// ---------------- RequestParser ----------------

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
  llhttp_init(reinterpret_cast<llhttp_t*>(llhttp_), HTTP_REQUEST, &kSettings);
  reinterpret_cast<llhttp_t*>(llhttp_)->data = &cb_;
  state_ = llhttp_;
}

ParseStatus RequestParser::parse_head(const char* data, size_t len, Request& req) {
  framing_ = BodyFraming::kNone;
  remaining_ = 0;
  req.header_count = 0;
  req.connection_token_count = 0;
  req.host = {};
  req.query = {};
  req.has_query = false;
  req.framing = BodyFraming::kNone;
  req.content_length = 0;
  req.expect_continue = false;
  req.head_bytes = 0;

  if (first_line_length(data, len) > limits_.max_request_line) {
    error_ = ParseError{414, "request line too long"};
    return ParseStatus::kError;
  }
  if (len > limits_.max_head_bytes) {
    error_ = ParseError{431, "request head too large"};
    return ParseStatus::kError;
  }

  HeadCtx c;
  init_ctx(c, limits_, true, req.headers, &req.header_count, req.connection_tokens,
           &req.connection_token_count);
  llhttp_t* p = ll(state_);
  const size_t used = run_head(p, c, data, len, &error_);
  if (used == 0) return ParseStatus::kError;

  if (p->http_major != 1 || p->http_minor > 1) {
    error_ = ParseError{505, "HTTP version not supported"};
    return ParseStatus::kError;
  }
  req.version_minor = p->http_minor;
  req.method = method_from_llhttp(p->method);
  req.method_name = c.method;
  req.target = c.url;
  if (req.method == Method::kConnect) {
    error_ = ParseError{501, "CONNECT is not supported"};
    return ParseStatus::kError;
  }
  // RFC 9112 3: exactly one SP between method and request-target (llhttp skips several).
  if (c.method.data() + c.method.size() + 1 != c.url.data()) {
    error_ = ParseError{400, "malformed request line"};
    return ParseStatus::kError;
  }
  // RFC 9112 3.2: an HTTP/1.1 request without Host is a 400.
  if (c.host_count == 0 && req.version_minor == 1) {
    error_ = ParseError{400, "missing Host"};
    return ParseStatus::kError;
  }
  req.host = c.host;
  if (const char* bad = split_target(req)) {
    error_ = ParseError{400, bad};
    return ParseStatus::kError;
  }

  if (c.te_final_chunked) {
    req.framing = BodyFraming::kChunked;
  } else if (c.cl_count > 0) {
    req.framing = BodyFraming::kLength;
    req.content_length = c.content_length;
    remaining_ = c.content_length;
  }
  framing_ = req.framing;
  // RFC 9112 9.3: 1.1 persists unless "close"; 1.0 only with "keep-alive".
  req.keep_alive = req.version_minor >= 1 ? !c.conn_close : (c.conn_keep_alive && !c.conn_close);
  req.expect_continue = c.expect_continue;
  req.head_bytes = static_cast<uint32_t>(used);
  return ParseStatus::kDone;
}

namespace {

// Shared by both parsers: Content-Length counts down, chunked runs llhttp (paused after the head)
// until on_message_complete pauses it again.
ParseStatus feed_common(llhttp_t* p, uint8_t framing_kind, uint64_t* remaining, const char* data,
                        size_t len, size_t* consumed, bool* chunked_done) {
  *chunked_done = false;
  if (framing_kind == 1) {  // length
    const uint64_t take = len < *remaining ? len : *remaining;
    *remaining -= take;
    *consumed = static_cast<size_t>(take);
    return *remaining == 0 ? ParseStatus::kDone : ParseStatus::kIncomplete;
  }
  // chunked
  if (llhttp_get_errno(p) == HPE_PAUSED) llhttp_resume(p);
  const llhttp_errno_t rc = llhttp_execute(p, data, len);
  if (rc == HPE_OK) {
    *consumed = len;
    return ParseStatus::kIncomplete;
  }
  if (rc == HPE_PAUSED) {
    *consumed = static_cast<size_t>(llhttp_get_error_pos(p) - data);
    *chunked_done = true;
    return ParseStatus::kDone;
  }
  *consumed = 0;
  return ParseStatus::kError;
}

}  // namespace

ParseStatus RequestParser::feed_body(const char* data, size_t len, size_t* consumed) {
  if (framing_ == BodyFraming::kNone) {
    *consumed = 0;
    return ParseStatus::kDone;
  }
  bool done = false;
  const ParseStatus st = feed_common(ll(state_), framing_ == BodyFraming::kLength ? 1 : 2,
                                     &remaining_, data, len, consumed, &done);
  if (st == ParseStatus::kError) {
    const char* reason = llhttp_get_error_reason(ll(state_));
    error_ = ParseError{400, reason != nullptr ? reason : "invalid chunked body"};
    framing_ = BodyFraming::kNone;
  } else if (done) {
    framing_ = BodyFraming::kNone;
  }
  return st;
}

// ---------------- ResponseParser ----------------

ResponseParser::ResponseParser(const Limits& limits) : limits_(limits) {
  llhttp_init(reinterpret_cast<llhttp_t*>(llhttp_), HTTP_RESPONSE, &kSettings);
  reinterpret_cast<llhttp_t*>(llhttp_)->data = &cb_;
  state_ = llhttp_;
}

ParseStatus ResponseParser::parse_head(const char* data, size_t len, bool request_was_head,
                                       Response& resp) {
  framing_ = ResponseFraming::kNone;
  remaining_ = 0;
  resp.header_count = 0;
  resp.connection_token_count = 0;
  resp.framing = ResponseFraming::kNone;
  resp.content_length = 0;
  resp.head_bytes = 0;

  if (len > limits_.max_head_bytes || first_line_length(data, len) > limits_.max_request_line) {
    error_ = ParseError{502, "upstream response head too large"};
    return ParseStatus::kError;
  }
  HeadCtx c;
  init_ctx(c, limits_, false, resp.headers, &resp.header_count, resp.connection_tokens,
           &resp.connection_token_count);
  llhttp_t* p = ll(state_);
  const size_t used = run_head(p, c, data, len, &error_);
  if (used == 0) return ParseStatus::kError;
  if (p->http_major != 1 || p->http_minor > 1) {
    error_ = ParseError{502, "unsupported upstream HTTP version"};
    return ParseStatus::kError;
  }
  const uint16_t status = p->status_code;
  if (status == 101) {
    error_ = ParseError{502, "upstream switched protocols"};
    return ParseStatus::kError;
  }
  if (status < 100) {
    error_ = ParseError{502, "invalid upstream status"};
    return ParseStatus::kError;
  }
  resp.status = status;
  resp.reason = c.status;
  resp.version_minor = p->http_minor;

  // RFC 9112 6.3 rules 1-2: no body for HEAD, 1xx, 204, 304 whatever the fields say.
  const bool no_body = request_was_head || status < 200 || status == 204 || status == 304;
  if (no_body) {
    resp.framing = ResponseFraming::kNone;
  } else if (c.te_count > 0) {
    // Rule 4: final coding chunked, else read until close.
    resp.framing = c.te_final_chunked ? ResponseFraming::kChunked : ResponseFraming::kUntilClose;
  } else if (c.cl_count > 0) {
    resp.content_length = c.content_length;
    resp.framing = c.content_length == 0 ? ResponseFraming::kNone : ResponseFraming::kLength;
    remaining_ = c.content_length;
  } else {
    resp.framing = ResponseFraming::kUntilClose;  // rule 8
  }
  framing_ = resp.framing;
  resp.keep_alive = (resp.version_minor >= 1 ? !c.conn_close : (c.conn_keep_alive && !c.conn_close)) &&
                    resp.framing != ResponseFraming::kUntilClose;
  resp.head_bytes = static_cast<uint32_t>(used);
  return ParseStatus::kDone;
}

ParseStatus ResponseParser::feed_body(const char* data, size_t len, size_t* consumed) {
  switch (framing_) {
    case ResponseFraming::kNone:
      *consumed = 0;
      return ParseStatus::kDone;
    case ResponseFraming::kUntilClose:
      *consumed = len;
      return ParseStatus::kIncomplete;
    default:
      break;
  }
  bool done = false;
  const ParseStatus st = feed_common(ll(state_), framing_ == ResponseFraming::kLength ? 1 : 2,
                                     &remaining_, data, len, consumed, &done);
  if (st == ParseStatus::kError) {
    error_ = ParseError{502, "invalid chunked body from upstream"};
    framing_ = ResponseFraming::kNone;
  } else if (done) {
    framing_ = ResponseFraming::kNone;
  }
  return st;
}

ParseStatus ResponseParser::feed_body_decoded(char* data, size_t len, size_t* consumed,
                                              size_t* decoded) {
  *decoded = 0;
  if (framing_ != ResponseFraming::kChunked) {
    *consumed = 0;
    error_ = ParseError{502, "decoded body asked for a response that is not chunked"};
    return ParseStatus::kError;
  }
  cb_.body_out = data;
  cb_.body_len = 0;
  const ParseStatus st = feed_body(data, len, consumed);
  *decoded = st == ParseStatus::kError ? 0 : cb_.body_len;  // spans before an error mean nothing
  cb_.body_out = nullptr;
  return st;
}

ParseStatus ResponseParser::finish_eof() {
  switch (framing_) {
    case ResponseFraming::kNone:
    case ResponseFraming::kUntilClose:
      framing_ = ResponseFraming::kNone;
      return ParseStatus::kDone;
    case ResponseFraming::kLength:
      if (remaining_ == 0) return ParseStatus::kDone;
      break;
    case ResponseFraming::kChunked:
      break;
  }
  error_ = ParseError{502, "upstream closed before the end of the body"};
  return ParseStatus::kError;
}

}  // namespace ringway::http
