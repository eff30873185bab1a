// HTTP/1.1 message parsing for the gateway: llhttp (strict mode) behind a small interface, plus
// the checks llhttp 8.1.0 lacks (obs-fold, empty or '_' field names, Host rules, TE lists and
// TE/CL conflicts, request-line spacing and line ends, size limits, chunk-extension caps). One
// parser per connection, owned by that connection's worker. llhttp types never leave src/http/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ringway/http/request.h"
#include "ringway/http/response.h"

namespace ringway::http {

struct Limits {
  uint32_t max_request_line = 8 * 1024;   // request-line longer: 414
  uint32_t max_head_bytes = 16 * 1024;    // whole head (line + fields) longer: 431
  uint16_t max_header_count = 100;        // more fields: 431 (<= kMaxHeaders)
  // Chunk extensions (RFC 9112 7.1.1) carry nothing the gateway uses but cost reading; unbounded
  // they let a client or upstream stream bytes that are never body (CVE-2024-22019). Bytes of
  // extension text (names, values, ';' and '=') per chunk-size line and per message; more: a
  // request gets 400, a response 502, and the connection is closed.
  uint32_t max_chunk_ext_line = 1024;
  uint32_t max_chunk_ext_message = 4 * 1024;
};

// Longest method token worth reading: longer than any method llhttp knows, so a longer one is a
// 501 (not implemented) as soon as it is seen, never a 414 (which is for the target).
inline constexpr uint32_t kMaxMethodLength = 32;

enum class ParseStatus : uint8_t {
  kIncomplete,  // need more bytes (head end not seen yet / body not finished)
  kDone,        // head parsed (parse_head) or body finished (feed_body)
  kError,       // see error(); the connection must be closed after replying
};

struct ParseError {
  uint16_t status = 400;       // 400, 413, 414, 417, 431, 501, 505 for requests; 502 for responses
  std::string_view detail;     // static string, safe to put in a problem+json reply
};

// Returns the length of the head (through the blank line) if data holds a complete head, else 0.
// Accepts CRLF CRLF and also finds bare-LF ends so that llhttp can reject them promptly.
size_t find_head_end(const char* data, size_t len);

// How far check_incomplete_head has validated a growing head, so the next call scans only the new
// bytes. One per connection; reset it (= HeadScan{}) whenever a new head starts at data[0].
struct HeadScan {
  uint32_t pos = 0;    // bytes of data already validated
  uint8_t state = 0;   // where in the head data[pos] falls (see parser.cc)
  uint8_t count = 0;   // method length so far, or position inside "HTTP/d.d"
};

// For a buffer that holds no complete head yet (find_head_end() == 0): status 0 if it may still
// become a valid head; 400 as soon as a byte arrives that no valid head has there (request-line
// tokens, field-name tchars, field-value bytes, line ends: RFC 9112 2.2, 3, 5; RFC 9110 5.5,
// 5.6.2), 501 for a method longer than kMaxMethodLength, 414 if the request line already exceeds
// max_request_line, 431 if the head already reaches max_head_bytes. The engine calls it after
// each read so a client cannot make the gateway buffer an endless or hopeless head. Everything it
// rejects parse_head() rejects too.
// The first form rescans data from the start; the second resumes where `scan` stopped.
ParseError check_incomplete_head(const char* data, size_t len, const Limits& limits);
ParseError check_incomplete_head(const char* data, size_t len, const Limits& limits, HeadScan& scan);

namespace detail {
// What a parser's llhttp callbacks write to (llhttp_t::data points here; see parser.cc).
struct CallbackState {
  void* head = nullptr;        // the head being parsed, null otherwise
  char* body_out = nullptr;    // ResponseParser::feed_body_decoded: where decoded bytes go
  size_t body_len = 0;
  // Chunk-extension bytes of the current chunk-size line and message, and their caps (Limits).
  uint32_t ext_line = 0;
  uint32_t ext_message = 0;
  uint32_t ext_line_max = 0;
  uint32_t ext_message_max = 0;
  bool ext_overflow = false;   // a cap was exceeded: the body error is about extensions
};
}  // namespace detail

class RequestParser {
 public:
  explicit RequestParser(const Limits& limits);
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses one complete head at data[0..len) (len = find_head_end(...)). Fills req with views
  // into data. Consumes no body bytes. kDone or kError (error() says which reply to send).
  // Call again for the next request on the connection (the parser resets itself).
  ParseStatus parse_head(const char* data, size_t len, Request& req);

  // The free check_incomplete_head() with this parser's HeadScan: each call scans only the bytes
  // added since the last one (a head sent a byte at a time costs O(n), not O(n^2)). data is the
  // start of the head being received. The scan starts over after parse_head(), after
  // reset_head_scan(), and whenever data moves (the engine gathered the head into a block).
  ParseError check_incomplete_head(const char* data, size_t len) {
    if (data != scan_data_) reset_head_scan();
    scan_data_ = data;
    return http::check_incomplete_head(data, len, limits_, scan_);
  }
  // Call when this parser starts serving a new connection: a partial head of the previous one
  // may have been left behind at the same address.
  void reset_head_scan() {
    scan_ = HeadScan{};
    scan_data_ = nullptr;
  }

  // Body bytes of the current request (after kDone from parse_head). Sets *consumed to the bytes
  // that belong to this body (less than len only when the body ends inside data; the rest is the
  // next pipelined request). kDone when the body is complete, kIncomplete when more is expected.
  ParseStatus feed_body(const char* data, size_t len, size_t* consumed);

  // Content-Length bodies only: bytes still expected. The forwarder may move up to this many bytes
  // itself (splice) and then report them with skip_body().
  uint64_t body_remaining() const { return remaining_; }
  void skip_body(uint64_t n) { remaining_ -= n; }

  const ParseError& error() const { return error_; }

 private:
  Limits limits_;
  ParseError error_;
  HeadScan scan_;
  const char* scan_data_ = nullptr;
  BodyFraming framing_ = BodyFraming::kNone;
  uint64_t remaining_ = 0;
  alignas(8) unsigned char llhttp_[128];  // llhttp_t, constructed in the .cc (size checked there)
  detail::CallbackState cb_;
};

class ResponseParser {
 public:
  explicit ResponseParser(const Limits& limits);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  // Parses one complete response head. request_was_head: the request method was HEAD (no body).
  // A 1xx interim response (other than 101) parses as kDone with status < 200; the caller relays
  // it and calls parse_head again for the final response. Errors are 502s.
  ParseStatus parse_head(const char* data, size_t len, bool request_was_head, Response& resp);

  // Body bytes of the current response; as RequestParser::feed_body. For kUntilClose it never
  // returns kDone; the caller calls finish_eof() when the upstream closes.
  ParseStatus feed_body(const char* data, size_t len, size_t* consumed);
  // Chunked bodies only: as feed_body, and the chunk data (without sizes, extensions, CRLFs and
  // trailers) is moved to the front of data, in place: *decoded bytes at data[0..). Used to give
  // an HTTP/1.0 client, which cannot read chunked framing, the body itself.
  ParseStatus feed_body_decoded(char* data, size_t len, size_t* consumed, size_t* decoded);
  // Upstream closed: kDone if the body was close-delimited, kError (truncated) otherwise.
  ParseStatus finish_eof();

  uint64_t body_remaining() const { return remaining_; }
  void skip_body(uint64_t n) { remaining_ -= n; }
  const ParseError& error() const { return error_; }

 private:
  Limits limits_;
  ParseError error_;
  ResponseFraming framing_ = ResponseFraming::kNone;
  uint64_t remaining_ = 0;
  alignas(8) unsigned char llhttp_[128];
  detail::CallbackState cb_;
};

}  // namespace ringway::http
