// llhttp (strict mode) glue. The engine hands parse_head() one complete head; llhttp validates the
// syntax while the callbacks below fill the Request/Response views and apply the checks llhttp
// 8.1.0 lacks. llhttp is paused in on_headers_complete, so it never reads a body byte during
// parse_head; it is resumed only for chunked bodies, whose framing it validates.
// Two of llhttp's strict checks are relaxed because they are wrong for us, and done here instead:
// the version (strict llhttp rejects HTTP/1.2, which RFC 9110 2.5 says to read as 1.1) and the
// Transfer-Encoding list (strict llhttp rejects "chunked," and answers no status; this file judges
// the whole combined list, RFC 9110 5.6.1, and tells llhttp the outcome in on_headers_complete).
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
  // The Transfer-Encoding list so far, all fields combined (see add_transfer_codings).
  uint8_t te_codings;     // non-empty elements (saturates)
  uint8_t te_chunked;     // of which "chunked" (saturates)
  bool te_last_chunked;   // the last element is "chunked"
  const char* te_bad;     // why the list is malformed, or null
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

// RFC 9110 7.2: Host = uri-host [ ":" port ]. The grammar allows an empty value (RFC 9112 3.2);
// callers that need an authority reject it themselves.
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

// RFC 9110 5.6.2 token characters.
struct TcharTable {
  bool ok[256] = {};
  constexpr TcharTable() {
    for (int c = 'a'; c <= 'z'; ++c) ok[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) ok[c] = true;
    for (int c = '0'; c <= '9'; ++c) ok[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) ok[static_cast<unsigned char>(c)] = true;
  }
};
constexpr TcharTable kTchars;

inline bool is_tchar(char c) { return kTchars.ok[static_cast<unsigned char>(c)]; }

// Adds one Transfer-Encoding field value to the list. RFC 9112 6.1: Transfer-Encoding =
// #transfer-coding; transfer-coding = token *( OWS ";" OWS token BWS "=" BWS ( token /
// quoted-string ) ). Empty list elements are ignored (RFC 9110 5.6.1: ", chunked" and "chunked,"
// are "chunked"), and repeated fields are one list in order (RFC 9110 5.3), so the judgment waits
// for the end of the head (judge_transfer_codings).
void add_transfer_codings(HeadCtx* c, std::string_view v) {
  const size_t n = v.size();
  size_t i = 0;
  auto skip_ows = [&] {
    while (i < n && is_ows(v[i])) ++i;
  };
  auto token = [&] {
    const size_t b = i;
    while (i < n && is_tchar(v[i])) ++i;
    return v.substr(b, i - b);
  };
  for (;;) {
    while (i < n && (v[i] == ',' || is_ows(v[i]))) ++i;
    if (i == n) return;
    const std::string_view name = token();
    if (name.empty()) {
      c->te_bad = "invalid Transfer-Encoding";
      return;
    }
    bool params = false;
    for (;;) {
      skip_ows();
      if (i == n || v[i] == ',') break;
      if (v[i] != ';') {
        c->te_bad = "invalid Transfer-Encoding";
        return;
      }
      ++i;
      skip_ows();
      const bool has_name = !token().empty();
      skip_ows();
      if (!has_name || i == n || v[i] != '=') {
        c->te_bad = "invalid transfer-coding parameter";
        return;
      }
      ++i;
      skip_ows();
      if (i < n && v[i] == '"') {  // quoted-string (RFC 9110 5.6.4); llhttp vetted the bytes
        for (++i; i < n && v[i] != '"'; ++i) {
          if (v[i] == '\\') ++i;
        }
        if (i >= n) {
          c->te_bad = "invalid transfer-coding parameter";
          return;
        }
        ++i;
      } else if (token().empty()) {
        c->te_bad = "invalid transfer-coding parameter";
        return;
      }
      params = true;
    }
    if (c->te_codings < 255) ++c->te_codings;
    c->te_last_chunked = iequals(name, "chunked");
    if (c->te_last_chunked) {
      if (c->te_chunked < 255) ++c->te_chunked;
      // RFC 9112 7 defines no parameters for chunked: a recipient cannot know what one means for
      // the framing, so the length of the body is not reliably known.
      if (params) c->te_bad = "parameters on the chunked transfer coding";
    }
  }
}

// RFC 9112 6.3 rule 4 and 6.1, with the status each failure earns. Requests: a malformed list, an
// empty one, chunked twice (7: a sender MUST NOT) or chunked not last (MUST be 400 and close) are
// malformed: 400. A well-formed list ending in one chunked with codings before it ("gzip, chunked")
// is a request we could frame but cannot forward: TE is hop-by-hop, so the gateway would have to
// decode gzip itself, which it does not implement: 501 (6.1: a server SHOULD answer 501 to a
// coding it does not understand). Responses: 502 for what is malformed; otherwise the final
// coding decides (not chunked: read until close).
int judge_transfer_codings(llhttp_t* p, HeadCtx* c) {
  if (c->is_request) {
    if (c->te_bad != nullptr) return fail(c, 400, c->te_bad);
    if (c->te_codings == 0) return fail(c, 400, "empty Transfer-Encoding");
    if (c->te_chunked > 1) return fail(c, 400, "chunked transfer coding applied more than once");
    if (!c->te_last_chunked) return fail(c, 400, "final transfer coding is not chunked");
    if (c->te_codings > 1) return fail(c, 501, "unsupported transfer coding");
  } else {
    if (c->te_bad != nullptr) return fail(c, 502, c->te_bad);
    if (c->te_chunked > 1) return fail(c, 502, "chunked applied more than once by upstream");
  }
  c->te_final_chunked = c->te_last_chunked;
  // llhttp frames the body it may later be resumed for from its own flags: make them say what was
  // decided here (its own reading of the list differs, e.g. for "chunked,").
  if (c->te_final_chunked) {
    p->flags |= F_CHUNKED;
  } else {
    p->flags &= static_cast<uint16_t>(~F_CHUNKED);
  }
  return 0;
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
        // RFC 9112 3.2: more than one Host, or an invalid value, is a 400. An empty one is valid
        // syntax for a target without authority, but the gateway has no default authority to
        // route by, so it is refused like a missing one.
        if (++c->host_count > 1) return fail(c, 400, "more than one Host field");
        if (value.empty()) return fail(c, 400, "empty Host");
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
        if (c->te_count < 255) ++c->te_count;
        if (c->is_request) {
          // RFC 9112 6.1: Transfer-Encoding was added in HTTP/1.1.
          if (p->http_minor == 0) return fail(c, 400, "Transfer-Encoding in an HTTP/1.0 request");
          if (c->cl_count > 0) return fail(c, 400, "ambiguous framing: Transfer-Encoding with Content-Length");
        } else {
          if (c->cl_count > 0) return fail(c, 502, "ambiguous framing from upstream");
        }
        add_transfer_codings(c, value);
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
  if (c->te_count > 0) {
    if (const int rc = judge_transfer_codings(p, c); rc != 0) return rc;
  }
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

// Chunk extensions are counted as they are read (name and value bytes, plus the ';' and '='
// each implies; llhttp strict allows no whitespace around them), against a cap per chunk-size line
// and per message (Limits).
int count_chunk_ext(llhttp_t* p, size_t n) {
  detail::CallbackState* cb = cb_of(p);
  // n is at most one buffer; the sums stop growing at the first overflow.
  cb->ext_line += static_cast<uint32_t>(n);
  cb->ext_message += static_cast<uint32_t>(n);
  if (cb->ext_line > cb->ext_line_max || cb->ext_message > cb->ext_message_max) {
    cb->ext_overflow = true;
    llhttp_set_error_reason(p, "chunk extensions too long");
    return HPE_USER;
  }
  return 0;
}

int on_chunk_extension_name(llhttp_t* p, const char*, size_t n) { return count_chunk_ext(p, n); }
int on_chunk_extension_value(llhttp_t* p, const char*, size_t n) { return count_chunk_ext(p, n); }
int on_chunk_extension_name_complete(llhttp_t* p) { return count_chunk_ext(p, 1); }
int on_chunk_extension_value_complete(llhttp_t* p) { return count_chunk_ext(p, 1); }

// Called when a chunk-size line is complete: the next line starts a new count.
int on_chunk_header(llhttp_t* p) {
  cb_of(p)->ext_line = 0;
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
    .on_chunk_extension_name = on_chunk_extension_name,
    .on_chunk_extension_value = on_chunk_extension_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value_complete = on_header_value_complete,
    .on_chunk_extension_name_complete = on_chunk_extension_name_complete,
    .on_chunk_extension_value_complete = on_chunk_extension_value_complete,
    .on_chunk_header = on_chunk_header,
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

// ---- the early head scanner (check_incomplete_head) ----
// A byte-at-a-time state machine over a request head that may still be arriving. It accepts
// exactly the bytes that can still lead to a head parse_head() accepts, so a client learns of an
// invalid byte when it arrives rather than when the head (or the head timeout) ends: RFC 9112 2.2
// (lines end in CRLF; empty lines before the request-line are skipped), 3 (method SP
// request-target SP HTTP-version), 5 (field-name ":" OWS field-value OWS, no obs-fold) and
// RFC 9110 5.5 / 5.6.2 (tchar names; values of VCHAR, obs-text, SP and HTAB). Where the full
// parse is stricter still (e.g. which bytes a path may hold), llhttp decides later.

enum ScanState : uint8_t {
  kScanLead,         // before the request-line: empty lines allowed
  kScanLeadCr,       // CR of such an empty line
  kScanMethod,       // count = method bytes so far
  kScanTargetStart,  // after the SP following the method
  kScanTarget,
  kScanVersion,      // count = bytes of "HTTP/d.d" matched
  kScanLineCr,       // CR ending the request-line or a field line
  kScanFieldStart,   // start of a field line, or of the blank line ending the head
  kScanName,
  kScanValue,
  kScanEndCr,        // CR of the blank line
  kScanDone,         // the head ended; nothing more to check here
};

enum : uint8_t { kClassTchar = 1, kClassValue = 2, kClassTarget = 4 };

struct ScanClasses {
  uint8_t of[256] = {};
  constexpr ScanClasses() {
    for (int c = 0; c < 256; ++c) {
      uint8_t k = 0;
      if (kTchars.ok[c]) k |= kClassTchar;
      // field-vchar / obs-text, SP and HTAB (OWS inside a value).
      if ((c >= 0x21 && c != 0x7f) || c == ' ' || c == '\t') k |= kClassValue;
      // Any visible byte: llhttp, not this scanner, decides which of them a target may hold.
      if (c >= 0x21 && c != 0x7f) k |= kClassTarget;
      of[c] = k;
    }
  }
};
constexpr ScanClasses kScan;

constexpr std::string_view kVersionShape = "HTTP/d.d";

ParseError scan_fail(const char* detail) { return ParseError{400, detail}; }

ParseError scan_head(const char* data, size_t len, HeadScan& scan) {
  uint8_t st = scan.state;
  uint8_t n = scan.count;
  for (size_t i = scan.pos; i < len; ++i) {
    const unsigned char ch = static_cast<unsigned char>(data[i]);
    const uint8_t k = kScan.of[ch];
    switch (st) {
      case kScanLead:
        if (ch == '\r') {
          st = kScanLeadCr;
        } else if (ch == '\n') {
          // llhttp skips a bare LF here as well.
        } else if (k & kClassTchar) {
          st = kScanMethod;
          n = 1;
        } else {
          // A line of whitespace before the request, or a request-line that starts with one.
          return scan_fail("invalid character before the method");
        }
        break;
      case kScanLeadCr:
        if (ch != '\n') return scan_fail("CR without LF");
        st = kScanLead;
        break;
      case kScanMethod:
        if (k & kClassTchar) {
          if (++n > kMaxMethodLength) return ParseError{501, "method not implemented"};
        } else if (ch == ' ') {
          st = kScanTargetStart;
        } else {
          return scan_fail("invalid character in method");  // e.g. HTAB for SP
        }
        break;
      case kScanTargetStart:
        if (!(k & kClassTarget)) return scan_fail("malformed request line");
        st = kScanTarget;
        break;
      case kScanTarget:
        if (ch == ' ') {
          st = kScanVersion;
          n = 0;
        } else if (!(k & kClassTarget)) {
          return scan_fail("invalid character in request-target");
        }
        break;
      case kScanVersion:
        if (n == kVersionShape.size()) {
          if (ch != '\r') return scan_fail("malformed HTTP version");
          st = kScanLineCr;
        } else if (kVersionShape[n] == 'd' ? (ch >= '0' && ch <= '9') : ch == kVersionShape[n]) {
          ++n;
        } else {
          return scan_fail("malformed HTTP version");
        }
        break;
      case kScanLineCr:
        if (ch != '\n') return scan_fail("CR without LF");
        st = kScanFieldStart;
        break;
      case kScanFieldStart:
        if (ch == '\r') {
          st = kScanEndCr;
        } else if (ch == '_') {
          return scan_fail("underscore in field name");
        } else if (k & kClassTchar) {
          st = kScanName;
        } else if (ch == ' ' || ch == '\t') {
          return scan_fail("obsolete line folding");  // or space after the request-line
        } else if (ch == ':') {
          return scan_fail("empty field name");
        } else {
          return scan_fail("invalid character in field name");
        }
        break;
      case kScanName:
        if (ch == ':') {
          st = kScanValue;
        } else if (ch == '_') {
          return scan_fail("underscore in field name");
        } else if (!(k & kClassTchar)) {
          return scan_fail("invalid character in field name");  // incl. SP before ':'
        }
        break;
      case kScanValue:
        if (ch == '\r') {
          st = kScanLineCr;
        } else if (!(k & kClassValue)) {
          return scan_fail("invalid character in field value");  // incl. bare LF, NUL
        }
        break;
      case kScanEndCr:
        if (ch != '\n') return scan_fail("CR without LF");
        st = kScanDone;
        break;
      default:  // kScanDone
        i = len;
        break;
    }
  }
  scan.pos = static_cast<uint32_t>(len);
  scan.state = st;
  scan.count = n;
  return ParseError{0, {}};
}

// For a request head llhttp refused at its method: 400 if the request-line is malformed there (a
// line of whitespace before it, HTAB for SP, a byte no method has), else the method is well formed
// but not one we know: 501 (RFC 9110 9.1).
ParseError classify_method_error(const char* data, size_t len) {
  HeadScan scan;
  const ParseError e = scan_head(data, len, scan);
  return e.status != 0 ? e : ParseError{501, "method not implemented"};
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
    if (c.is_request && rc == HPE_INVALID_METHOD) {
      *err = classify_method_error(data, len);
      return 0;
    }
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
    req.asterisk_form = true;
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
  HeadScan scan;
  return check_incomplete_head(data, len, limits, scan);
}

ParseError check_incomplete_head(const char* data, size_t len, const Limits& limits,
                                 HeadScan& scan) {
  if (len < scan.pos) scan = HeadScan{};  // not the head scanned so far: start over
  if (const ParseError e = scan_head(data, len, scan); e.status != 0) return e;
  // A request line of max_request_line bytes plus CRLF ends by index max_request_line + 1.
  const size_t probe = len < size_t{limits.max_request_line} + 2 ? len : size_t{limits.max_request_line} + 2;
  if (len > size_t{limits.max_request_line} + 1 && std::memchr(data, '\n', probe) == nullptr) {
    return ParseError{414, "request line too long"};
  }
  if (len >= limits.max_head_bytes) return ParseError{431, "request head too large"};
  return ParseError{0, {}};
}

// ---------------- RequestParser ----------------

namespace {

void init_llhttp(void* storage, llhttp_type_t type, detail::CallbackState* cb, const Limits& limits) {
  llhttp_t* p = static_cast<llhttp_t*>(storage);
  llhttp_init(p, type, &kSettings);
  p->data = cb;
  if (type == HTTP_REQUEST) {
    // llhttp_reset keeps these. The version and the Transfer-Encoding list are judged in this
    // file (see the top), which needs llhttp to let them through.
    p->lenient_flags |= LENIENT_VERSION | LENIENT_TRANSFER_ENCODING;
  }
  cb->ext_line_max = limits.max_chunk_ext_line;
  cb->ext_message_max = limits.max_chunk_ext_message;
}

// A new message: its chunk extensions are counted from zero.
void reset_chunk_ext(detail::CallbackState& cb) {
  cb.ext_line = 0;
  cb.ext_message = 0;
  cb.ext_overflow = false;
}

}  // namespace

RequestParser::RequestParser(const Limits& limits) : limits_(limits) {
  init_llhttp(llhttp_, HTTP_REQUEST, &cb_, limits_);
}

ParseStatus RequestParser::parse_head(const char* data, size_t len, Request& req) {
  framing_ = BodyFraming::kNone;
  remaining_ = 0;
  req.header_count = 0;
  req.connection_token_count = 0;
  req.host = {};
  req.query = {};
  req.has_query = false;
  req.asterisk_form = false;
  req.framing = BodyFraming::kNone;
  req.content_length = 0;
  req.expect_continue = false;
  req.head_bytes = 0;
  reset_chunk_ext(cb_);
  reset_head_scan();  // the next incomplete head starts a new scan

  if (first_line_length(data, len) > limits_.max_request_line) {
    // 414 is about the target (RFC 9110 15.5.15): a line made long by its method, or malformed
    // before its target, gets the answer that method or byte deserves.
    HeadScan scan;
    const ParseError e = scan_head(data, len, scan);
    error_ = e.status != 0 ? e : ParseError{414, "request line too long"};
    return ParseStatus::kError;
  }
  if (len > limits_.max_head_bytes) {
    error_ = ParseError{431, "request head too large"};
    return ParseStatus::kError;
  }

  HeadCtx c;
  init_ctx(c, limits_, true, req.headers, &req.header_count, req.connection_tokens,
           &req.connection_token_count);
  llhttp_t* p = ll(llhttp_);
  const size_t used = run_head(p, c, data, len, &error_);
  if (used == 0) return ParseStatus::kError;

  // RFC 9110 2.5 / 15.6.6: a major version other than 1 (HTTP/2.0 or 3.x in an HTTP/1 request-line,
  // or 0.9) is one we do not support; an unknown minor version of 1 is read as 1.1, the highest we
  // implement (llhttp lets both through: LENIENT_VERSION).
  if (p->http_major != 1) {
    error_ = ParseError{505, "HTTP version not supported"};
    return ParseStatus::kError;
  }
  req.version_minor = p->http_minor > 1 ? 1 : p->http_minor;
  req.method = method_from_llhttp(p->method);
  req.method_name = c.method;
  req.target = c.url;
  if (req.method == Method::kConnect) {
    error_ = ParseError{501, "CONNECT is not supported"};
    return ParseStatus::kError;
  }
  // RFC 9112 3: exactly one SP between method, request-target and version (llhttp skips several),
  // and the line ends in CRLF: llhttp takes a bare LF there, which we refuse everywhere else in a
  // head (RFC 9112 2.2 only allows it). The url is followed by "HTTP/d.d" and a line end in data,
  // so url_end[0..10] is in bounds.
  const char* url_end = c.url.data() + c.url.size();
  if (c.method.data() + c.method.size() + 1 != c.url.data() || url_end[0] != ' ' ||
      url_end[1] != 'H' || url_end[9] != '\r') {
    error_ = ParseError{400, "malformed request line"};
    return ParseStatus::kError;
  }
  // llhttp also takes a bare LF as the blank line that ends the head; we refuse a bare LF there
  // too (find_head_end() hands such heads over only so that they can be refused).
  if (used < 4 || std::memcmp(data + used - 4, "\r\n\r\n", 4) != 0) {
    error_ = ParseError{400, "head not ended by CRLF CRLF"};
    return ParseStatus::kError;
  }
  // RFC 9112 2.2: only empty lines may precede the request-line; llhttp also skips a bare CR.
  for (const char* q = data; q < c.method.data();) {
    if (*q == '\n') {
      ++q;
    } else if (q[0] == '\r' && q[1] == '\n') {
      q += 2;
    } else {
      error_ = ParseError{400, "invalid bytes before the request line"};
      return ParseStatus::kError;
    }
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
  const ParseStatus st = feed_common(ll(llhttp_), framing_ == BodyFraming::kLength ? 1 : 2,
                                     &remaining_, data, len, consumed, &done);
  if (st == ParseStatus::kError) {
    const char* reason = llhttp_get_error_reason(ll(llhttp_));
    if (cb_.ext_overflow) reason = "chunk extensions too long";
    error_ = ParseError{400, reason != nullptr ? reason : "invalid chunked body"};
    framing_ = BodyFraming::kNone;
  } else if (done) {
    framing_ = BodyFraming::kNone;
  }
  return st;
}

// ---------------- ResponseParser ----------------

ResponseParser::ResponseParser(const Limits& limits) : limits_(limits) {
  init_llhttp(llhttp_, HTTP_RESPONSE, &cb_, limits_);
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
  reset_chunk_ext(cb_);

  if (len > limits_.max_head_bytes || first_line_length(data, len) > limits_.max_request_line) {
    error_ = ParseError{502, "upstream response head too large"};
    return ParseStatus::kError;
  }
  HeadCtx c;
  init_ctx(c, limits_, false, resp.headers, &resp.header_count, resp.connection_tokens,
           &resp.connection_token_count);
  llhttp_t* p = ll(llhttp_);
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
  const ParseStatus st = feed_common(ll(llhttp_), framing_ == ResponseFraming::kLength ? 1 : 2,
                                     &remaining_, data, len, consumed, &done);
  if (st == ParseStatus::kError) {
    error_ = ParseError{502, cb_.ext_overflow ? "chunk extensions from upstream too long"
                                              : "invalid chunked body from upstream"};
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
