// RFC 9110 / 9112 conformance of the request and response parsers (issue 12): exact statuses for
// malformed vs unsupported input, list syntax, versions, asterisk-form, chunk-extension caps and
// the early head scanner (check_incomplete_head).
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ringway/http/parser.h"
#include "test_util.h"

namespace ringway::http {
namespace {

using test::parse_request;
using test::parse_response;
using namespace std::string_view_literals;

uint16_t status_of(const std::string& head, const Limits& limits = Limits{}) {
  RequestParser parser(limits);
  Request req;
  const ParseStatus st = parse_request(parser, head, req);
  if (st == ParseStatus::kDone) return 0;
  EXPECT_EQ(st, ParseStatus::kError);
  EXPECT_FALSE(parser.error().detail.empty());
  return parser.error().status;
}

std::string post_te(const std::string& te_fields) {
  return "POST /u HTTP/1.1\r\nHost: a\r\n" + te_fields + "\r\n";
}

// ---- Transfer-Encoding: list syntax and statuses (RFC 9110 5.6.1, RFC 9112 6.1, 6.3) ----

TEST(TransferEncoding, EmptyListElementsAreIgnored) {
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  for (const char* te : {"Transfer-Encoding: , chunked\r\n", "Transfer-Encoding: chunked,\r\n",
                         "Transfer-Encoding: ,,chunked ,, \r\n", "Transfer-Encoding: CHUNKED\r\n",
                         // repeated fields are one list: "chunked, " is chunked
                         "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
                         "Transfer-Encoding: ,\r\nTransfer-Encoding: chunked\r\n"}) {
    RequestParser parser(Limits{});
    Request req;
    const std::string buf = post_te(te) + body + next;
    ASSERT_EQ(parse_request(parser, buf, req), ParseStatus::kDone) << te << parser.error().detail;
    EXPECT_EQ(req.framing, BodyFraming::kChunked) << te;
    // llhttp frames the body the same way: it ends exactly before the next request.
    size_t consumed = 0;
    ASSERT_EQ(parser.feed_body(buf.data() + req.head_bytes, buf.size() - req.head_bytes, &consumed),
              ParseStatus::kDone) << te;
    EXPECT_EQ(consumed, body.size()) << te;
    const char* n = buf.data() + req.head_bytes + consumed;
    ASSERT_EQ(parser.parse_head(n, find_head_end(n, next.size()), req), ParseStatus::kDone);
    EXPECT_EQ(req.path, "/next");
  }
}

TEST(TransferEncoding, ListWithContentLengthIsAmbiguous) {
  for (const char* te : {"Transfer-Encoding: , chunked\r\n", "Transfer-Encoding: chunked,\r\n"}) {
    EXPECT_EQ(status_of(post_te(std::string(te) + "Content-Length: 3\r\n")), 400) << te;
    EXPECT_EQ(status_of(post_te(std::string("Content-Length: 3\r\n") + te)), 400) << te;
  }
}

TEST(TransferEncoding, MalformedIs400UnsupportedIs501) {
  struct Case {
    const char* fields;
    uint16_t status;
  } cases[] = {
      // final coding not chunked (RFC 9112 6.3 rule 4: MUST 400)
      {"Transfer-Encoding: gzip\r\n", 400},
      {"Transfer-Encoding: identity\r\n", 400},
      {"Transfer-Encoding: chunked, gzip\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400},
      // chunked more than once (RFC 9112 6.1 / 7)
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: gzip, chunked, chunked\r\n", 400},
      // empty list
      {"Transfer-Encoding:\r\n", 400},
      {"Transfer-Encoding: , ,\r\n", 400},
      // not a list of transfer-codings
      {"Transfer-Encoding: chunked;\r\n", 400},
      {"Transfer-Encoding: chunked;x=1\r\n", 400},
      {"Transfer-Encoding: gzip chunked\r\n", 400},
      {"Transfer-Encoding: gzip;q, chunked\r\n", 400},
      {"Transfer-Encoding: gzip;a=\"x, chunked\r\n", 400},
      {"Transfer-Encoding: \"chunked\"\r\n", 400},
      // well-formed, final chunked, a coding we do not implement (RFC 9112 6.1: 501)
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
      {"Transfer-Encoding: gzip;level=1, chunked\r\n", 501},
      {"Transfer-Encoding: x-y;n=\"a,b\\\"c\" , chunked\r\n", 501},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(status_of(post_te(c.fields)), c.status) << c.fields;
  }
}

TEST(TransferEncoding, ResponseListSyntax) {
  ResponseParser parser(Limits{});
  Response resp;
  for (const char* te : {"chunked,", ", chunked", "gzip, chunked"}) {
    const std::string head = std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + te + "\r\n\r\n";
    const std::string buf = head + "3\r\nabc\r\n0\r\n\r\nHTTP/1.1";
    ASSERT_EQ(parse_response(parser, buf, resp), ParseStatus::kDone) << te;
    EXPECT_EQ(resp.framing, ResponseFraming::kChunked) << te;
    size_t consumed = 0;
    ASSERT_EQ(parser.feed_body(buf.data() + head.size(), buf.size() - head.size(), &consumed),
              ParseStatus::kDone) << te;
    EXPECT_EQ(consumed, buf.size() - head.size() - 8) << te;
  }
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
  ASSERT_EQ(parse_response(parser, head, resp), ParseStatus::kDone);
  EXPECT_EQ(resp.framing, ResponseFraming::kUntilClose);
  for (const char* te : {"chunked, chunked", "chunked;x=1", "a b"}) {
    const std::string bad = std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: ") + te + "\r\n\r\n";
    EXPECT_EQ(parse_response(parser, bad, resp), ParseStatus::kError) << te;
    EXPECT_EQ(parser.error().status, 502) << te;
  }
}

// ---- request-line shape (RFC 9112 2.2, 3) ----

TEST(RequestLine, TabOrWhitespaceLineIs400UnknownMethodIs501) {
  EXPECT_EQ(status_of("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\t\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400);  // two SP before the version
  EXPECT_EQ(status_of(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of(" \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("\t\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("\r\n \r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);  // an empty line is skipped
  EXPECT_EQ(status_of("G(T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);     // not a token
  EXPECT_EQ(status_of("BREW / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);    // a token we do not know
  EXPECT_EQ(status_of("get / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);     // methods are case-sensitive
  EXPECT_EQ(status_of("GETX / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n\n"), 400);  // bare LF as the blank line
  EXPECT_EQ(status_of("GET / HTTP/1.0\r\n\n"), 400);
}

TEST(RequestLine, LongMethodIsNot414) {
  Limits lim;
  lim.max_request_line = 32;
  const std::string method(kMaxMethodLength + 1, 'M');
  EXPECT_EQ(status_of(method + " / HTTP/1.1\r\nHost: a\r\n\r\n", lim), 501);
  EXPECT_EQ(status_of(method + " / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
  EXPECT_EQ(status_of(std::string(kMaxMethodLength, 'M') + " / HTTP/1.1\r\nHost: a\r\n\r\n"), 501);
  EXPECT_EQ(status_of(std::string(60, 'M') + "\t/ HTTP/1.1\r\nHost: a\r\n\r\n", lim), 501);
  EXPECT_EQ(status_of("GE\x01T / HTTP/1.1\r\nHost: a\r\n\r\n", lim), 400);
  EXPECT_EQ(status_of("GET /" + std::string(40, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n", lim), 414);
  // Early too: nothing of the line but the method has arrived.
  const std::string partial = std::string(200, 'M');
  EXPECT_EQ(check_incomplete_head(partial.data(), partial.size(), lim).status, 501);
  EXPECT_EQ(check_incomplete_head(partial.data(), kMaxMethodLength, lim).status, 0);
  const std::string target = "GET /" + std::string(100, 'a');
  EXPECT_EQ(check_incomplete_head(target.data(), target.size(), lim).status, 414);
}

// ---- versions (RFC 9110 2.5, 15.6.6) ----

TEST(Version, HigherMinorIsHttp11OtherMajorIs505) {
  RequestParser parser(Limits{});
  Request req;
  for (const char* v : {"HTTP/1.2", "HTTP/1.9"}) {
    const std::string s = std::string("POST / ") + v +
                          "\r\nHost: a\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n";
    ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << v << parser.error().detail;
    EXPECT_EQ(req.version_minor, 1) << v;
    EXPECT_TRUE(req.keep_alive) << v;
    EXPECT_TRUE(req.expect_continue) << v;
    EXPECT_EQ(req.framing, BodyFraming::kChunked) << v;
  }
  // Host stays mandatory for 1.x, x >= 1.
  EXPECT_EQ(status_of("GET / HTTP/1.2\r\n\r\n"), 400);
  for (const char* v : {"HTTP/2.0", "HTTP/3.0", "HTTP/3.1", "HTTP/0.9", "HTTP/9.9"}) {
    EXPECT_EQ(status_of(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n"), 505) << v;
  }
  for (const char* v : {"HTTP/1.10", "HTTP/11.1", "HTTP/1", "http/1.1", "HTTP/1.1x", "HTTP/1.x",
                        "HTTP/2"}) {
    EXPECT_EQ(status_of(std::string("GET / ") + v + "\r\nHost: a\r\n\r\n"), 400) << v;
  }
}

// ---- Host (RFC 9112 3.2) ----

TEST(Host, EmptyIs400) {
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost:\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost:   \r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.0\r\nHost:\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n"), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 0);
}

// ---- asterisk-form (RFC 9112 3.2.4) ----

TEST(AsteriskForm, OnlyForOptionsAndSaidClearly) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << parser.error().detail;
  EXPECT_TRUE(req.asterisk_form);
  EXPECT_EQ(req.method, Method::kOptions);
  EXPECT_EQ(req.target, "*");
  EXPECT_EQ(req.path, "*");
  EXPECT_FALSE(req.has_query);
  s = "OPTIONS /x HTTP/1.1\r\nHost: a\r\n\r\n";
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_FALSE(req.asterisk_form);  // reset for the next request on the connection
  s = "OPTIONS * HTTP/1.0\r\n\r\n";
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_TRUE(req.asterisk_form);
  for (const char* m : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "TRACE"}) {
    EXPECT_EQ(status_of(std::string(m) + " * HTTP/1.1\r\nHost: a\r\n\r\n"), 400) << m;
  }
  EXPECT_EQ(status_of("OPTIONS *x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
  EXPECT_EQ(status_of("OPTIONS */ HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
}

// ---- chunk extensions (RFC 9112 7.1.1; CVE-2024-22019 class) ----

// Feeds `body` to a chunked request in pieces of `step` bytes; returns the final status and, on
// error, the error.
ParseStatus feed_request_body(const std::string& body, const Limits& lim, size_t step,
                              ParseError* err) {
  RequestParser parser(lim);
  Request req;
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(parse_request(parser, head, req), ParseStatus::kDone);
  size_t off = 0;
  ParseStatus st = ParseStatus::kIncomplete;
  while (off < body.size() && st == ParseStatus::kIncomplete) {
    const size_t n = std::min(step, body.size() - off);
    size_t consumed = 0;
    st = parser.feed_body(body.data() + off, n, &consumed);
    off += consumed;
  }
  *err = parser.error();
  return st;
}

std::string ext_of(size_t bytes) {  // ";n=vvv" of exactly `bytes` bytes (bytes >= 4)
  return ";n=" + std::string(bytes - 3, 'v');
}

TEST(ChunkExtensions, CappedPerLineOnRequests) {
  Limits lim;
  lim.max_chunk_ext_line = 64;
  lim.max_chunk_ext_message = 1024;
  for (size_t step : {size_t{1}, size_t{7}, size_t{4096}}) {
    ParseError err;
    EXPECT_EQ(feed_request_body("3" + ext_of(64) + "\r\nabc\r\n0\r\n\r\n", lim, step, &err),
              ParseStatus::kDone) << step;
    EXPECT_EQ(feed_request_body("3" + ext_of(65) + "\r\nabc\r\n0\r\n\r\n", lim, step, &err),
              ParseStatus::kError) << step;
    EXPECT_EQ(err.status, 400);
    EXPECT_EQ(err.detail, "chunk extensions too long");
    // The last chunk's line counts too, and several extensions add up (";" + name each; llhttp
    // 8.1 takes no second extension after one with a value).
    EXPECT_EQ(feed_request_body("3\r\nabc\r\n0;" + std::string(31, 'a') + ";" + std::string(31, 'b') +
                                    "\r\n\r\n", lim, step, &err),
              ParseStatus::kDone) << step;
    EXPECT_EQ(feed_request_body("3\r\nabc\r\n0;" + std::string(31, 'a') + ";" + std::string(32, 'b') +
                                    "\r\n\r\n", lim, step, &err),
              ParseStatus::kError) << step;
    EXPECT_EQ(err.detail, "chunk extensions too long");
    EXPECT_EQ(feed_request_body("3;a;b;c\r\nabc\r\n0;d\r\n\r\n", lim, step, &err),
              ParseStatus::kDone) << step;
  }
  // A 1 MiB extension is refused long before its end.
  Limits def;
  ParseError err;
  const std::string huge = "3" + ext_of(1 << 20) + "\r\nabc\r\n0\r\n\r\n";
  EXPECT_EQ(feed_request_body(huge, def, 65536, &err), ParseStatus::kError);
  EXPECT_EQ(err.status, 400);
}

TEST(ChunkExtensions, CappedPerMessageAndResetPerMessage) {
  Limits lim;
  lim.max_chunk_ext_line = 64;
  lim.max_chunk_ext_message = 200;
  std::string ok, over;
  for (int i = 0; i < 4; ++i) ok += "1" + ext_of(50) + "\r\nx\r\n";  // 200 bytes in all
  over = ok + "1" + ext_of(4) + "\r\nx\r\n";
  ParseError err;
  EXPECT_EQ(feed_request_body(ok + "0\r\n\r\n", lim, 5, &err), ParseStatus::kDone);
  EXPECT_EQ(feed_request_body(over + "0\r\n\r\n", lim, 5, &err), ParseStatus::kError);
  EXPECT_EQ(err.status, 400);

  // Each message of a connection starts from zero.
  RequestParser parser(lim);
  Request req;
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = ok + "0\r\n\r\n";
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(parse_request(parser, head, req), ParseStatus::kDone);
    size_t consumed = 0;
    ASSERT_EQ(parser.feed_body(body.data(), body.size(), &consumed), ParseStatus::kDone) << round;
    EXPECT_EQ(consumed, body.size());
  }
  // And after an error the parser still serves the next head.
  ASSERT_EQ(parse_request(parser, head, req), ParseStatus::kDone);
  size_t consumed = 0;
  const std::string bad = over + "0\r\n\r\n";
  EXPECT_EQ(parser.feed_body(bad.data(), bad.size(), &consumed), ParseStatus::kError);
  ASSERT_EQ(parse_request(parser, head, req), ParseStatus::kDone);
  EXPECT_EQ(parser.feed_body(body.data(), body.size(), &consumed), ParseStatus::kDone);
}

TEST(ChunkExtensions, CappedOnResponsesBothWays) {
  Limits lim;
  lim.max_chunk_ext_line = 64;
  lim.max_chunk_ext_message = 1024;
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (bool decoded : {false, true}) {
    for (size_t ext : {size_t{64}, size_t{65}}) {
      ResponseParser parser(lim);
      Response resp;
      std::string buf = head + "3" + ext_of(ext) + "\r\nabc\r\n0\r\n\r\n";
      ASSERT_EQ(parse_response(parser, buf, resp), ParseStatus::kDone);
      size_t consumed = 0, out = 0;
      char* b = buf.data() + head.size();
      const size_t n = buf.size() - head.size();
      const ParseStatus st = decoded ? parser.feed_body_decoded(b, n, &consumed, &out)
                                     : parser.feed_body(b, n, &consumed);
      if (ext == 64) {
        EXPECT_EQ(st, ParseStatus::kDone) << decoded;
        if (decoded) {
          EXPECT_EQ(std::string(b, out), "abc");
        }
      } else {
        EXPECT_EQ(st, ParseStatus::kError) << decoded;
        EXPECT_EQ(parser.error().status, 502);
        EXPECT_EQ(parser.error().detail, "chunk extensions from upstream too long");
      }
    }
  }
}

// ---- early rejection (check_incomplete_head) ----

std::string escaped(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  return out;
}

const char* const kValidHeads[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "\r\nGET /p?q=1&r=%20 HTTP/1.1\r\nHost: api.example:8080\r\nAccept: */*\r\n\r\n",
    "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: , chunked\r\nX-Q: \"a b\"\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
    "M-SEARCH /a\"<>{}|\\^` HTTP/1.0\r\n!#$%&'*+-.^`|~09azAZ: \x80\xff obs-text\r\n\r\n",
    "PROPFIND http://h:1/x HTTP/1.2\r\nHost: h\r\nUser-Agent: a b c\r\n\r\n",
};

TEST(CheckIncompleteHead, EveryPrefixOfAValidHeadIsAccepted) {
  for (const char* h : kValidHeads) {
    const std::string s = h;
    EXPECT_EQ(status_of(s), 0) << escaped(s) << " (the head itself must parse)";
    HeadScan scan;
    for (size_t n = 0; n < s.size(); ++n) {
      EXPECT_EQ(check_incomplete_head(s.data(), n, Limits{}).status, 0) << n << ": " << s;
      EXPECT_EQ(check_incomplete_head(s.data(), n, Limits{}, scan).status, 0) << n << ": " << s;
    }
  }
}

TEST(CheckIncompleteHead, InvalidByteAnsweredWhenItArrives) {
  struct Case {
    std::string_view prefix;  // ends with the offending byte; no head end in it
    uint16_t status;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x01"sv, 400},  // CTL in a value
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x7f"sv, 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0"sv, 400},
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb"sv, 400},  // bare CR
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\nb"sv, 400},  // bare LF
      {"GET / HTTP/1.1\r\nHost: a\r\nX(A"sv, 400},        // not a tchar
      {"GET / HTTP/1.1\r\nHost: a\r\nX-A :"sv, 400},      // SP before ':'
      {"GET / HTTP/1.1\r\nHost: a\r\nX_A"sv, 400},        // underscore (see on_header_field_complete)
      {"GET / HTTP/1.1\r\nHost: a\r\n:"sv, 400},          // empty name
      {"GET / HTTP/1.1\r\nHost: a\r\n "sv, 400},          // obs-fold
      {"GET / HTTP/1.1\r\n\tHost"sv, 400},
      {"GET\t"sv, 400},                                   // HTAB for SP
      {"GET /\t"sv, 400},
      {"GET / HTTP/1.1\t"sv, 400},
      {"GET / HTTP/1.1\r\r"sv, 400},
      {"GET / HTTP/1.1 "sv, 400},
      {"GET / HTTP/1."sv, 0},
      {"GET / HTTP/1.x"sv, 400},
      {"GET / HTTQ"sv, 400},
      {"GET  "sv, 400},
      {"GET /\x01"sv, 400},
      {" "sv, 400},                                       // whitespace line before the request
      {"\r\n\t"sv, 400},
      {"\r\r"sv, 400},
      {"G\x80T"sv, 400},
  };
  for (const Case& c : cases) {
    const std::string s(c.prefix);
    ASSERT_EQ(find_head_end(s.data(), s.size()), 0u) << s;
    EXPECT_EQ(check_incomplete_head(s.data(), s.size(), Limits{}).status, c.status) << s;
    if (c.status != 0) {
      // Nothing after the byte can rescue the head: the full parse agrees.
      EXPECT_NE(status_of(s + "\r\nHost: a\r\n\r\n"), 0) << s;
    }
  }
}

TEST(CheckIncompleteHead, IncrementalScanEqualsRescan) {
  std::mt19937 rng(12);
  const std::string valid = kValidHeads[1];
  for (int round = 0; round < 300; ++round) {
    std::string s = valid.substr(0, valid.size() - 2);  // no head end
    s[rng() % s.size()] = static_cast<char>(rng() % 256);
    if (find_head_end(s.data(), s.size()) != 0) continue;
    HeadScan scan;
    size_t n = 0;
    uint16_t incremental = 0;
    while (n < s.size() && incremental == 0) {
      n += 1 + rng() % 9;
      if (n > s.size()) n = s.size();
      incremental = check_incomplete_head(s.data(), n, Limits{}, scan).status;
      EXPECT_EQ(incremental, check_incomplete_head(s.data(), n, Limits{}).status) << n << ": " << s;
    }
  }
}

TEST(CheckIncompleteHead, ParserKeepsTheScanPerConnection) {
  RequestParser parser(Limits{});
  Request req;
  const std::string first = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string second = "GET /b HTTP/1.1\r\nHost: a\r\nX-A: \x01";
  for (size_t n = 1; n < first.size(); ++n) {
    ASSERT_EQ(parser.check_incomplete_head(first.data(), n).status, 0) << n;
  }
  ASSERT_EQ(parse_request(parser, first, req), ParseStatus::kDone);
  // A new head, fed in pieces: answered at the bad byte, not before.
  for (size_t n = 1; n < second.size(); ++n) {
    ASSERT_EQ(parser.check_incomplete_head(second.data(), n).status, 0) << n;
  }
  EXPECT_EQ(parser.check_incomplete_head(second.data(), second.size()).status, 400);
  // Another buffer, or a shorter one than last time, is not the same head: the scan starts over.
  RequestParser other(Limits{});
  EXPECT_EQ(other.check_incomplete_head(second.data(), second.size() - 1).status, 0);
  EXPECT_EQ(other.check_incomplete_head(first.data(), 5).status, 0);
  EXPECT_EQ(other.check_incomplete_head(first.data(), first.size() - 2).status, 0);
  std::string moved = second;  // the same bytes gathered elsewhere
  EXPECT_EQ(other.check_incomplete_head(moved.data(), moved.size()).status, 400);
  // A new connection on a recycled parser, its first bytes at the old address.
  std::string buf = "GET /x HTTP/1.1\r\nX-A: v";
  EXPECT_EQ(other.check_incomplete_head(buf.data(), buf.size()).status, 0);
  other.reset_head_scan();
  buf = "GET /y HTTP/1.1\r\nX(A: v";
  EXPECT_EQ(other.check_incomplete_head(buf.data(), buf.size()).status, 400);
}

// The scanner must never refuse what the full parser accepts: mutate valid heads at random and
// compare.
TEST(CheckIncompleteHead, NeverStricterThanParseHead) {
  std::mt19937 rng(7);
  const char kBytes[] = " \t\r\n:_;,\"()/?#*%\x01\x7f\x80\xff" "aZ09-.";
  int rejected_early = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = kValidHeads[rng() % std::size(kValidHeads)];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits; ++e) {
      const size_t at = rng() % s.size();
      const char b = rng() % 2 ? kBytes[rng() % (sizeof(kBytes) - 1)] : static_cast<char>(rng());
      switch (rng() % 3) {
        case 0: s[at] = b; break;
        case 1: s.insert(s.begin() + static_cast<long>(at), b); break;
        default: s.erase(at, 1); break;
      }
    }
    const size_t end = find_head_end(s.data(), s.size());
    if (end == 0) continue;
    uint16_t early = 0;
    for (size_t n = 0; n < end && early == 0; ++n) {
      if (find_head_end(s.data(), n) != 0) break;
      early = check_incomplete_head(s.data(), n, Limits{}).status;
    }
    if (early == 0) continue;
    ++rejected_early;
    RequestParser parser(Limits{});
    Request req;
    EXPECT_EQ(parser.parse_head(s.data(), end, req), ParseStatus::kError) << "early " << early << ": " << escaped(s);
  }
  EXPECT_GT(rejected_early, 1000);
}

}  // namespace
}  // namespace ringway::http
