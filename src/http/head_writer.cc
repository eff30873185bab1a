// Head serializer: every forwarded head is rebuilt from validated fields, so raw client bytes
// (odd spacing, duplicate framing fields, hop-by-hop options) never reach the other side.
#include "ringway/http/head_writer.h"

#include <cstring>

#include "ringway/core/json_escape.h"

namespace ringway::http {
namespace {

// Bounded append-only writer; once a write does not fit, everything after is dropped and the
// caller gets 0.
class Out {
 public:
  Out(char* out, size_t cap) : begin_(out), pos_(out), end_(out + cap) {}
  void put(std::string_view s) {
    if (static_cast<size_t>(end_ - pos_) < s.size()) {
      ok_ = false;
      pos_ = end_;
      return;
    }
    if (!s.empty()) std::memcpy(pos_, s.data(), s.size());
    pos_ += s.size();
  }
  void put(char c) {
    if (pos_ == end_) {
      ok_ = false;
      return;
    }
    *pos_++ = c;
  }
  void put_uint(uint64_t v) {
    char buf[20];
    size_t n = 0;
    do {
      buf[sizeof(buf) - 1 - n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    put(std::string_view(buf + sizeof(buf) - n, n));
  }
  void field(std::string_view name, std::string_view value) {
    put(name);
    put(": ");
    put(value);
    put("\r\n");
  }
  size_t done() const { return ok_ ? static_cast<size_t>(pos_ - begin_) : 0; }

 private:
  char* begin_;
  char* pos_;
  char* end_;
  bool ok_ = true;
};

size_t digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

constexpr std::string_view kConnClose = "Connection: close\r\n";
constexpr std::string_view kConnKeepAlive = "Connection: keep-alive\r\n";

}  // namespace

// RFC 9110 7.6.1: fields that describe this connection only and must not be forwarded.
bool is_hop_by_hop(std::string_view name) {
  switch (name.size()) {
    case 2: return iequals(name, "te");
    case 7: return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 16: return iequals(name, "proxy-connection");
    default: return false;
  }
}

namespace {

bool named_in(std::string_view name, const std::string_view* list, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (iequals(name, list[i])) return true;
  }
  return false;
}

bool named_in(std::string_view name, std::span<const Header> list) {
  for (const Header& h : list) {
    if (iequals(name, h.name)) return true;
  }
  return false;
}

bool named_in(std::string_view name, std::span<const std::string> list) {
  for (const std::string& n : list) {
    if (iequals(name, n)) return true;
  }
  return false;
}

// Client fields the gateway rewrites itself.
enum class Own : uint8_t { kNo, kDrop, kForwardedFor };

Own classify_request_field(std::string_view name) {
  switch (name.size()) {
    case 4: return iequals(name, "host") ? Own::kDrop : Own::kNo;
    case 6: return iequals(name, "expect") ? Own::kDrop : Own::kNo;  // we answer 100-continue
    case 14: return iequals(name, "content-length") ? Own::kDrop : Own::kNo;
    case 15: return iequals(name, "x-forwarded-for") ? Own::kForwardedFor : Own::kNo;
    case 16: return iequals(name, "x-forwarded-host") ? Own::kDrop : Own::kNo;
    case 17:
      return iequals(name, "transfer-encoding") || iequals(name, "x-forwarded-proto") ? Own::kDrop
                                                                                       : Own::kNo;
    default: return Own::kNo;
  }
}

bool method_expects_body(Method m) {
  return m == Method::kPost || m == Method::kPut || m == Method::kPatch || m == Method::kOther;
}

}  // namespace

size_t write_upstream_head(char* out, size_t cap, const Request& req, const UpstreamHeadParams& p) {
  Out o(out, cap);
  o.put(p.method.empty() ? req.method_name : p.method);
  o.put(' ');
  o.put(p.base_path);
  if (p.path_remainder.empty() || p.path_remainder[0] != '/') o.put('/');
  o.put(p.path_remainder);
  const std::string_view drop = p.edits != nullptr ? p.edits->remove_query_param : std::string_view{};
  if (req.has_query && drop.empty()) {  // byte-exact: no re-encoding of the query
    o.put('?');
    o.put(req.query);
  } else if (req.has_query) {
    // Keep every parameter but the dropped one, byte for byte and in order.
    std::string_view q = req.query;
    bool first = true;
    while (true) {
      const size_t amp = q.find('&');
      const std::string_view pair = q.substr(0, amp);
      if (pair.substr(0, pair.find('=')) != drop) {
        o.put(first ? '?' : '&');
        o.put(pair);
        first = false;
      }
      if (amp == std::string_view::npos) break;
      q = q.substr(amp + 1);
    }
  }
  o.put(" HTTP/1.1\r\n");

  const std::string_view* removes = p.edits != nullptr ? p.edits->remove : nullptr;
  const size_t remove_count = p.edits != nullptr ? p.edits->remove_count : 0;
  bool have_xff = false;
  for (uint16_t i = 0; i < req.header_count; ++i) {
    const Header& h = req.headers[i];
    if (is_hop_by_hop(h.name)) continue;
    const Own own = classify_request_field(h.name);
    if (own == Own::kDrop) continue;
    if (req.connection_token_count != 0 &&
        named_in(h.name, req.connection_tokens, req.connection_token_count)) {
      continue;
    }
    if (own == Own::kForwardedFor) continue;  // merged below
    if (remove_count != 0 && named_in(h.name, removes, remove_count)) continue;
    if (!p.add_headers.empty() && named_in(h.name, p.add_headers)) continue;
    if (!p.pass_only.empty() && !named_in(h.name, p.pass_only)) continue;
    o.field(h.name, h.value);
  }

  o.put("Host: ");
  o.put(p.preserve_host && !req.host.empty() ? req.host : p.authority);
  o.put("\r\n");

  // X-Forwarded-For: the client's list (unless Connection nominated it), then the peer address.
  const bool xff_nominated = req.connection_token_count != 0 &&
                             named_in("x-forwarded-for", req.connection_tokens,
                                      req.connection_token_count);
  for (uint16_t i = 0; i < req.header_count && !xff_nominated; ++i) {
    const Header& h = req.headers[i];
    if (h.name.size() != 15 || !iequals(h.name, "x-forwarded-for") || h.value.empty()) continue;
    o.put(have_xff ? ", " : "X-Forwarded-For: ");
    o.put(h.value);
    have_xff = true;
  }
  if (!p.client_addr.empty()) {
    o.put(have_xff ? ", " : "X-Forwarded-For: ");
    o.put(p.client_addr);
    have_xff = true;
  }
  if (have_xff) o.put("\r\n");
  if (!req.host.empty()) o.field("X-Forwarded-Host", req.host);
  o.field("X-Forwarded-Proto", p.proto);

  // Exactly one framing field (RFC 9112 6.1-6.2), chosen from the validated framing.
  switch (p.no_body ? BodyFraming::kNone : req.framing) {
    case BodyFraming::kLength:
      o.put("Content-Length: ");
      o.put_uint(req.content_length);
      o.put("\r\n");
      break;
    case BodyFraming::kChunked:
      o.put("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::kNone:
      // RFC 9110 8.6: say "no content" explicitly for methods that normally carry some.
      if (p.method.empty() && method_expects_body(req.method)) o.put("Content-Length: 0\r\n");
      break;
  }

  if (p.edits != nullptr) {
    for (uint8_t i = 0; i < p.edits->add_count; ++i) o.field(p.edits->add[i].name, p.edits->add[i].value);
  }
  for (const Header& h : p.add_headers) o.field(h.name, h.value);
  o.put("\r\n");
  return o.done();
}

size_t write_downstream_head(char* out, size_t cap, const Response& resp,
                             const DownstreamHeadParams& p) {
  Out o(out, cap);
  o.put("HTTP/1.1 ");
  o.put_uint(resp.status);
  o.put(' ');
  o.put(resp.reason.empty() ? reason_phrase(resp.status) : resp.reason);
  o.put("\r\n");
  for (uint16_t i = 0; i < resp.header_count; ++i) {
    const Header& h = resp.headers[i];
    if (is_hop_by_hop(h.name)) continue;
    if (p.dechunk && h.name.size() == 17 && iequals(h.name, "transfer-encoding")) continue;
    if (resp.connection_token_count != 0 &&
        named_in(h.name, resp.connection_tokens, resp.connection_token_count)) {
      continue;
    }
    o.field(h.name, h.value);
  }
  for (const Header& h : p.add_headers) o.field(h.name, h.value);
  if (p.close) {
    o.put(kConnClose);
  } else if (p.keep_alive) {
    o.put(kConnKeepAlive);
  }
  o.put("\r\n");
  return o.done();
}

namespace {

constexpr std::string_view kContentType = "Content-Type: ";
constexpr std::string_view kContentLength = "Content-Length: ";

size_t local_head_size(const LocalHead& h) {
  size_t n = std::string_view("HTTP/1.1 ").size() + digits(h.status) + 1 + reason_phrase(h.status).size() +
             2 + kContentLength.size() + digits(h.content_length) + 2 + 2;
  if (!h.content_type.empty()) n += kContentType.size() + h.content_type.size() + 2;
  if (h.close) n += kConnClose.size();
  if (h.keep_alive && !h.close) n += kConnKeepAlive.size();
  for (const Header& f : h.headers) n += f.name.size() + 2 + f.value.size() + 2;
  return n;
}

void put_local_head(Out& o, const LocalHead& h) {
  o.put("HTTP/1.1 ");
  o.put_uint(h.status);
  o.put(' ');
  o.put(reason_phrase(h.status));
  o.put("\r\n");
  if (!h.content_type.empty()) {
    o.put(kContentType);
    o.put(h.content_type);
    o.put("\r\n");
  }
  o.put(kContentLength);
  o.put_uint(h.content_length);
  o.put("\r\n");
  if (h.close) {
    o.put(kConnClose);
  } else if (h.keep_alive) {
    o.put(kConnKeepAlive);
  }
  for (const Header& f : h.headers) o.field(f.name, f.value);
  o.put("\r\n");
}

}  // namespace

size_t write_local_head(char* out, size_t cap, const LocalHead& h) {
  Out o(out, cap);
  put_local_head(o, h);
  return o.done();
}

void append_local_head(std::string& out, const LocalHead& h) {
  const size_t old = out.size();
  const size_t need = local_head_size(h);
  out.resize(old + need);
  Out o(out.data() + old, need);
  put_local_head(o, h);
  out.resize(old + o.done());
}

size_t write_problem(char* out, size_t cap, uint16_t status, std::string_view detail, bool close,
                     std::span<const Header> extra_headers) {
  const std::string_view reason = reason_phrase(status);
  constexpr std::string_view kB1 = "{\"type\":\"about:blank\",\"title\":\"";
  constexpr std::string_view kB2 = "\",\"status\":";
  constexpr std::string_view kB3 = ",\"detail\":\"";
  constexpr std::string_view kB4 = "\"}";
  const size_t body_fixed = kB1.size() + reason.size() + kB2.size() + digits(status) + kB3.size() +
                            kB4.size();

  LocalHead head;
  head.status = status;
  head.content_type = "application/problem+json";
  head.close = close;
  head.headers = extra_headers;
  // The head's size less the digits of Content-Length, which depend on what of detail fits.
  const size_t head_fixed = local_head_size(head) - 1;

  // How many bytes of detail fit: escape units (core/json_escape.h) are never split, so a UTF-8
  // sequence is kept whole or dropped whole and the body stays valid JSON text.
  const auto* d = reinterpret_cast<const unsigned char*>(detail.data());
  char tmp[6];
  size_t esc_full = 0;
  for (size_t i = 0, used = 0; i < detail.size(); i += used) {
    esc_full += core::write_json_escaped_unit(d + i, detail.size() - i, tmp, &used);
  }
  const size_t fixed = head_fixed + body_fixed + digits(body_fixed + esc_full);
  if (fixed > cap) return 0;
  const size_t budget = cap - fixed;
  size_t take = detail.size();
  size_t esc_len = esc_full;
  if (esc_full > budget) {
    esc_len = 0;
    take = 0;
    while (take < detail.size()) {
      size_t used = 0;
      const size_t n = core::write_json_escaped_unit(d + take, detail.size() - take, tmp, &used);
      if (esc_len + n > budget) break;
      esc_len += n;
      take += used;
    }
  }
  const size_t body_len = body_fixed + esc_len;

  Out o(out, cap);
  head.content_length = body_len;
  put_local_head(o, head);
  o.put(kB1);
  o.put(reason);
  o.put(kB2);
  o.put_uint(status);
  o.put(kB3);
  for (size_t i = 0, used = 0; i < take; i += used) {
    const size_t n = core::write_json_escaped_unit(d + i, take - i, tmp, &used);
    o.put(std::string_view(tmp, n));
  }
  o.put(kB4);
  return o.done();
}

std::string_view reason_phrase(uint16_t status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

}  // namespace ringway::http
