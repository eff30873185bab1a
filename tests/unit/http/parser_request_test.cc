#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringway/http/parser.h"
#include "test_util.h"

namespace ringway::http {
namespace {

using test::parse_request;

// Parses `head` with default limits and returns the error status (0 when accepted).
uint16_t status_of(const std::string& head, const Limits& limits = Limits{}) {
  RequestParser parser(limits);
  Request req;
  const ParseStatus st = parse_request(parser, head, req);
  if (st == ParseStatus::kDone) return 0;
  EXPECT_EQ(st, ParseStatus::kError);
  EXPECT_FALSE(parser.error().detail.empty());
  return parser.error().status;
}

std::string get_with(const std::string& fields, const std::string& line = "GET / HTTP/1.1") {
  return line + "\r\n" + fields + "\r\n";
}

TEST(FindHeadEnd, CrlfBareLfAndIncomplete) {
  const std::string full = "GET / HTTP/1.1\r\nHost: a\r\n\r\nBODY";
  EXPECT_EQ(find_head_end(full.data(), full.size()), full.size() - 4);
  for (size_t n = 0; n < full.size() - 4; ++n) {
    EXPECT_EQ(find_head_end(full.data(), n), 0u) << n;
  }
  const std::string bare = "GET / HTTP/1.1\nHost: a\n\nX";
  EXPECT_EQ(find_head_end(bare.data(), bare.size()), bare.size() - 1);
  const std::string mixed = "GET / HTTP/1.1\r\nHost: a\n\r\n";
  EXPECT_EQ(find_head_end(mixed.data(), mixed.size()), mixed.size());
  EXPECT_EQ(find_head_end("", 0), 0u);
}

TEST(CheckIncompleteHead, Limits) {
  Limits lim;
  lim.max_request_line = 20;
  lim.max_head_bytes = 64;
  std::string s = "GET /" + std::string(14, 'a') + " HTTP";  // 24 bytes, no line end yet
  EXPECT_EQ(check_incomplete_head(s.data(), s.size(), lim).status, 414);
  std::string ok = "GET /abc HTTP/1.1";  // 17 bytes, could still end in time
  EXPECT_EQ(check_incomplete_head(ok.data(), ok.size(), lim).status, 0);
  std::string exact = "GET /" + std::string(6, 'a') + " HTTP/1.1\r";  // 20-char line, CR seen, LF may follow
  ASSERT_EQ(exact.size(), 21u);
  EXPECT_EQ(check_incomplete_head(exact.data(), exact.size(), lim).status, 0);
  std::string big = "GET / HTTP/1.1\r\n" + std::string(48, 'x');
  EXPECT_EQ(big.size(), 64u);
  EXPECT_EQ(check_incomplete_head(big.data(), big.size(), lim).status, 431);
  EXPECT_EQ(check_incomplete_head(big.data(), 63, lim).status, 0);
}

TEST(RequestParser, BasicGetFillsEveryField) {
  RequestParser parser(Limits{});
  Request req;
  const std::string s =
      "GET /profile?x=1&y=%20 HTTP/1.1\r\nHost: api.example.com:8080\r\n"
      "Accept:   text/html  \r\nX-Empty:\r\nUser-Agent: t\t\r\n\r\n";
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << parser.error().detail;
  EXPECT_EQ(req.method, Method::kGet);
  EXPECT_EQ(req.method_name, "GET");
  EXPECT_EQ(req.target, "/profile?x=1&y=%20");
  EXPECT_EQ(req.path, "/profile");
  EXPECT_TRUE(req.has_query);
  EXPECT_EQ(req.query, "x=1&y=%20");
  EXPECT_EQ(req.version_minor, 1);
  EXPECT_EQ(req.host, "api.example.com:8080");
  EXPECT_EQ(req.framing, BodyFraming::kNone);
  EXPECT_TRUE(req.keep_alive);
  EXPECT_FALSE(req.expect_continue);
  EXPECT_EQ(req.connection_token_count, 0);
  ASSERT_EQ(req.header_count, 4);
  EXPECT_EQ(req.headers[0].name, "Host");
  EXPECT_EQ(req.headers[1].name, "Accept");
  EXPECT_EQ(req.headers[1].value, "text/html");
  EXPECT_EQ(req.headers[2].name, "X-Empty");
  EXPECT_EQ(req.headers[2].value, "");
  EXPECT_EQ(req.headers[3].value, "t");
  EXPECT_EQ(req.head_bytes, s.size());
  size_t consumed = 99;
  EXPECT_EQ(parser.feed_body("GET", 3, &consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, 0u);
}

TEST(RequestParser, QueryForms) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: a\r\n", "GET /a? HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.path, "/a");
  EXPECT_TRUE(req.has_query);
  EXPECT_EQ(req.query, "");
  s = get_with("Host: a\r\n", "GET /a/b HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.path, "/a/b");
  EXPECT_FALSE(req.has_query);  // reset from the previous request
  EXPECT_EQ(req.query, "");
  s = get_with("Host: a\r\n", "GET /?a=b?c HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.path, "/");
  EXPECT_EQ(req.query, "a=b?c");
}

TEST(RequestParser, Methods) {
  RequestParser parser(Limits{});
  Request req;
  struct Case { const char* name; Method m; } cases[] = {
      {"GET", Method::kGet}, {"HEAD", Method::kHead}, {"POST", Method::kPost},
      {"PUT", Method::kPut}, {"DELETE", Method::kDelete}, {"OPTIONS", Method::kOptions},
      {"TRACE", Method::kTrace}, {"PATCH", Method::kPatch}, {"PROPFIND", Method::kOther}};
  for (const Case& c : cases) {
    std::string s = get_with("Host: a\r\n", std::string(c.name) + " / HTTP/1.1");
    ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << c.name;
    EXPECT_EQ(req.method, c.m) << c.name;
    EXPECT_EQ(req.method_name, c.name);
  }
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "CONNECT a:443 HTTP/1.1")), 501);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "BREW / HTTP/1.1")), 501);
}

TEST(RequestParser, RequestLineShape) {
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET  / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET / HTTP/1.1 ")), 400);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET / HTTP/2.0")), 505);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET /a#frag HTTP/1.1")), 400);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET a/b HTTP/1.1")), 400);
  EXPECT_EQ(status_of("GET / HTTP/1.1\nHost: a\n\n"), 400);  // bare LF, strict
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400);
  EXPECT_EQ(status_of("\r\n\r\n"), 400);  // empty lines only, no request
}

TEST(RequestParser, DotSegmentsRejected) {
  // A raw-path prefix match must not be escapable by segments the upstream will normalise.
  for (const char* target : {"/public/../admin", "/a/./b", "/a/..", "/..", "/a/%2e%2E/b", "/a/.%2e",
                             "/a/%2E"}) {
    EXPECT_EQ(status_of(get_with("Host: a\r\n", std::string("GET ") + target + " HTTP/1.1")), 400)
        << target;
  }
  for (const char* target : {"/a/...", "/a/.hidden", "/v1.2/x", "/a/b.json?x=/../", "/%2e%2ex"}) {
    EXPECT_EQ(status_of(get_with("Host: a\r\n", std::string("GET ") + target + " HTTP/1.1")), 0)
        << target;
  }
}

TEST(RequestParser, AsteriskFormOnlyWithOptions) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: a\r\n", "OPTIONS * HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.path, "*");
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET * HTTP/1.1")), 400);
}

TEST(RequestParser, AbsoluteFormTakesHostFromTarget) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: ignored\r\n", "GET http://api.example:81/p/q?a=1 HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << parser.error().detail;
  EXPECT_EQ(req.host, "api.example:81");
  EXPECT_EQ(req.path, "/p/q");
  EXPECT_EQ(req.query, "a=1");
  EXPECT_EQ(req.target, "http://api.example:81/p/q?a=1");
  s = get_with("Host: x\r\n", "GET HTTPS://h HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << parser.error().detail;
  EXPECT_EQ(req.host, "h");
  EXPECT_EQ(req.path, "/");
  EXPECT_FALSE(req.has_query);
  EXPECT_EQ(status_of(get_with("Host: x\r\n", "GET http://u@h/ HTTP/1.1")), 400);
  EXPECT_EQ(status_of(get_with("Host: x\r\n", "GET ftp://h/ HTTP/1.1")), 400);
}

TEST(RequestParser, FieldLineChecks) {
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A: 1\r\n  folded\r\n")), 400);  // obs-fold, SP
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A: 1\r\n\tfolded\r\n")), 400);  // obs-fold, HTAB
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A:\r\n folded\r\n")), 400);      // after empty value
  EXPECT_EQ(status_of(get_with("Host: a\r\n: v\r\n")), 400);                 // empty name
  EXPECT_EQ(status_of(get_with("Host: a\r\nX_A: v\r\n")), 400);              // underscore
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A : v\r\n")), 400);             // space before ':'
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A: \x01\r\n")), 400);           // control char
  EXPECT_EQ(status_of(get_with("Host: a\r\nX-A: 1\r\n")), 0);
}

TEST(RequestParser, HostRules) {
  EXPECT_EQ(status_of(get_with("")), 400);                          // HTTP/1.1 without Host
  EXPECT_EQ(status_of(get_with("Host: a\r\nHost: a\r\n")), 400);    // two Host fields
  EXPECT_EQ(status_of(get_with("", "GET / HTTP/1.0")), 0);          // 1.0 may omit it
  for (const char* bad : {"a b", "a/b", "a@b", "[::1", "[::1]x", "a:80x", "a:123456", ":80",
                          "a%zz", "a?b"}) {
    EXPECT_EQ(status_of(get_with(std::string("Host: ") + bad + "\r\n")), 400) << bad;
  }
  for (const char* good : {"example.com", "EXAMPLE.com:8080", "[::1]:80", "10.0.0.1", "a-b_c~",
                           "xn--n3h.example", "%41b"}) {
    EXPECT_EQ(status_of(get_with(std::string("Host: ") + good + "\r\n")), 0) << good;
  }
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("", "GET / HTTP/1.0");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.host, "");
}

TEST(RequestParser, FramingConflicts) {
  EXPECT_EQ(status_of(get_with("Host: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                               "POST / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(get_with("Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                               "POST / HTTP/1.1")), 400);
  EXPECT_EQ(status_of(get_with("Host: a\r\nTransfer-Encoding: chunked\r\n", "POST / HTTP/1.0")),
            400);
  // RFC 9112 6.3: final coding not chunked, or chunked twice, is malformed (400); a well-formed
  // list ending in chunked with a coding the gateway does not implement is 501.
  for (const char* te : {"chunked, chunked", "identity", "chunked, gzip", "gzip", "chunked;x=1"}) {
    EXPECT_EQ(status_of(get_with(std::string("Host: a\r\nTransfer-Encoding: ") + te + "\r\n",
                                 "POST / HTTP/1.1")), 400) << te;
  }
  EXPECT_EQ(status_of(get_with("Host: a\r\nTransfer-Encoding: gzip, chunked\r\n", "POST / HTTP/1.1")),
            501);
  EXPECT_EQ(status_of(get_with("Host: a\r\nTransfer-Encoding: chunked\r\n"
                               "Transfer-Encoding: chunked\r\n", "POST / HTTP/1.1")), 400);
  for (const char* cl : {"5, 5", "abc", "-1", "+5", "", "99999999999999999999", "5 5"}) {
    EXPECT_EQ(status_of(get_with(std::string("Host: a\r\nContent-Length: ") + cl + "\r\n",
                                 "POST / HTTP/1.1")), 400) << cl;
  }
  EXPECT_EQ(status_of(get_with("Host: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n",
                               "POST / HTTP/1.1")), 400);
}

TEST(RequestParser, FramingAccepted) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: a\r\nTransfer-Encoding: Chunked\r\n", "POST / HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.framing, BodyFraming::kChunked);
  s = get_with("Host: a\r\nContent-Length: 0012\r\n", "POST / HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(req.framing, BodyFraming::kLength);
  EXPECT_EQ(req.content_length, 12u);
  EXPECT_EQ(parser.body_remaining(), 12u);
}

TEST(RequestParser, SizeLimits) {
  Limits lim;
  lim.max_request_line = 32;
  lim.max_head_bytes = 128;
  lim.max_header_count = 3;
  const std::string line_ok = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1";
  ASSERT_EQ(line_ok.size(), 32u);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", line_ok), lim), 0);
  EXPECT_EQ(status_of(get_with("Host: a\r\n", "GET /" + std::string(32 - 13, 'a') + " HTTP/1.1"),
                      lim), 414);
  // Leading empty lines (RFC 9112 2.2) are skipped, not mistaken for the request line.
  EXPECT_EQ(status_of("\r\n" + get_with("Host: a\r\n", "GET /" + std::string(32 - 13, 'a') +
                                                          " HTTP/1.1"), lim), 414);
  EXPECT_EQ(status_of("\r\n" + get_with("Host: a\r\n", line_ok), lim), 0);
  EXPECT_EQ(status_of(get_with("Host: a\r\nA: 1\r\nB: 2\r\n"), lim), 0);
  EXPECT_EQ(status_of(get_with("Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n"), lim), 431);
  std::string big = get_with("Host: a\r\nA: " + std::string(100, 'x') + "\r\n");
  ASSERT_GT(big.size(), 128u);
  EXPECT_EQ(status_of(big, lim), 431);
  lim.max_header_count = 1000;  // clamped to kMaxHeaders
  lim.max_head_bytes = 64 * 1024;
  std::string many = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < kMaxHeaders; ++i) many += "X-F: " + std::to_string(i) + "\r\n";
  many += "\r\n";
  EXPECT_EQ(status_of(many, lim), 431);
}

TEST(RequestParser, KeepAliveAndConnectionTokens) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: a\r\nConnection: close, X-Foo ,, keep-alive,X-Bar\r\n");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_FALSE(req.keep_alive);
  ASSERT_EQ(req.connection_token_count, 2);
  EXPECT_EQ(req.connection_tokens[0], "X-Foo");
  EXPECT_EQ(req.connection_tokens[1], "X-Bar");

  s = get_with("Host: a\r\n", "GET / HTTP/1.0");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_FALSE(req.keep_alive);
  EXPECT_EQ(req.version_minor, 0);
  EXPECT_EQ(req.connection_token_count, 0);
  s = get_with("Host: a\r\nConnection: Keep-Alive\r\n", "GET / HTTP/1.0");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_TRUE(req.keep_alive);
  s = get_with("Host: a\r\n");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_TRUE(req.keep_alive);

  std::string many = "Host: a\r\nConnection: ";
  for (int i = 0; i < 17; ++i) many.append("x").append(std::to_string(i)).append(",");
  many += "\r\n";
  EXPECT_EQ(status_of(get_with(many)), 400);
}

TEST(RequestParser, Expect) {
  RequestParser parser(Limits{});
  Request req;
  std::string s = get_with("Host: a\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n",
                           "POST / HTTP/1.1");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_TRUE(req.expect_continue);
  s = get_with("Host: a\r\nExpect: 100-continue\r\n", "POST / HTTP/1.0");
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_FALSE(req.expect_continue);  // RFC 9110 10.1.1: ignored for HTTP/1.0
  EXPECT_EQ(status_of(get_with("Host: a\r\nExpect: 200-ok\r\n")), 417);
}

TEST(RequestParser, UpgradeIsTreatedAsNormalRequest) {
  RequestParser parser(Limits{});
  Request req;
  const std::string body = "3\r\nabc\r\n0\r\n\r\n";
  const std::string next = "GET /n HTTP/1.1\r\nHost: a\r\n\r\n";
  std::string s = get_with("Host: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                           "Transfer-Encoding: chunked\r\n", "POST /u HTTP/1.1") + body + next;
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone) << parser.error().detail;
  EXPECT_EQ(req.framing, BodyFraming::kChunked);
  ASSERT_EQ(req.connection_token_count, 1);
  EXPECT_EQ(req.connection_tokens[0], "Upgrade");
  size_t off = req.head_bytes;
  size_t consumed = 0;
  ASSERT_EQ(parser.feed_body(s.data() + off, s.size() - off, &consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, body.size());
  off += consumed;
  ASSERT_EQ(parser.parse_head(s.data() + off, find_head_end(s.data() + off, s.size() - off), req),
            ParseStatus::kDone);
  EXPECT_EQ(req.path, "/n");

  // Without a body too: the next request follows directly.
  s = get_with("Host: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n") + next;
  ASSERT_EQ(parse_request(parser, s, req), ParseStatus::kDone);
  EXPECT_EQ(parser.feed_body(s.data() + req.head_bytes, s.size() - req.head_bytes, &consumed),
            ParseStatus::kDone);
  EXPECT_EQ(consumed, 0u);
  off = req.head_bytes;
  ASSERT_EQ(parser.parse_head(s.data() + off, find_head_end(s.data() + off, s.size() - off), req),
            ParseStatus::kDone);
  EXPECT_EQ(req.path, "/n");
}

// Walks a buffer of pipelined requests the way the engine does; returns the paths and bodies.
struct Walked {
  std::vector<std::string> paths;
  std::vector<std::string> bodies;
};

Walked walk(const std::string& buf) {
  Walked w;
  RequestParser parser(Limits{});
  Request req;
  size_t off = 0;
  while (off < buf.size()) {
    const size_t n = find_head_end(buf.data() + off, buf.size() - off);
    EXPECT_GT(n, 0u);
    if (n == 0) break;
    EXPECT_EQ(parser.parse_head(buf.data() + off, n, req), ParseStatus::kDone)
        << parser.error().detail;
    w.paths.emplace_back(req.path);
    off += n;
    size_t consumed = 0;
    const ParseStatus st = parser.feed_body(buf.data() + off, buf.size() - off, &consumed);
    EXPECT_EQ(st, ParseStatus::kDone);
    w.bodies.emplace_back(buf.substr(off, consumed));
    off += consumed;
  }
  return w;
}

TEST(RequestParser, PipelinedRequestsInOneBuffer) {
  const std::string buf =
      "GET /one HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
      "POST /three HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n"
      "DELETE /four HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const Walked w = walk(buf);
  ASSERT_EQ(w.paths.size(), 4u);
  EXPECT_EQ(w.paths[0], "/one");
  EXPECT_EQ(w.paths[1], "/two");
  EXPECT_EQ(w.paths[2], "/three");
  EXPECT_EQ(w.paths[3], "/four");
  EXPECT_EQ(w.bodies[0], "");
  EXPECT_EQ(w.bodies[1], "hello");
  EXPECT_EQ(w.bodies[2], "5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n");
  EXPECT_EQ(w.bodies[3], "");
}

TEST(RequestParser, ChunkedBodySplitAtEveryByte) {
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "4\r\nWiki\r\nA;n=v\r\n0123456789\r\n0\r\nT-A: 1\r\nT-B: 2\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string buf = head + body + next;
  for (size_t split = 0; split <= body.size() + next.size(); ++split) {
    RequestParser parser(Limits{});
    Request req;
    ASSERT_EQ(parse_request(parser, buf, req), ParseStatus::kDone);
    ASSERT_EQ(req.head_bytes, head.size());
    const char* b = buf.data() + head.size();
    const size_t avail = buf.size() - head.size();
    size_t consumed1 = 0;
    const size_t first = split < avail ? split : avail;
    ParseStatus st = parser.feed_body(b, first, &consumed1);
    size_t total = consumed1;
    if (split < body.size()) {
      ASSERT_EQ(st, ParseStatus::kIncomplete) << split;
      ASSERT_EQ(consumed1, split);
      size_t consumed2 = 0;
      st = parser.feed_body(b + consumed1, avail - consumed1, &consumed2);
      total += consumed2;
    }
    ASSERT_EQ(st, ParseStatus::kDone) << split;
    ASSERT_EQ(total, body.size()) << split;
    // The request (and its buffer) may be gone by now; the next request still parses.
    const char* n = b + total;
    ASSERT_EQ(parser.parse_head(n, find_head_end(n, next.size()), req), ParseStatus::kDone);
    EXPECT_EQ(req.path, "/next");
  }
}

TEST(RequestParser, ChunkedBodyOneByteAtATime) {
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "1\r\nx\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
  const std::string buf = head + body;
  RequestParser parser(Limits{});
  Request req;
  ASSERT_EQ(parse_request(parser, buf, req), ParseStatus::kDone);
  for (size_t i = 0; i < body.size(); ++i) {
    size_t consumed = 0;
    const ParseStatus st = parser.feed_body(buf.data() + head.size() + i, 1, &consumed);
    EXPECT_EQ(consumed, 1u);
    EXPECT_EQ(st, i + 1 == body.size() ? ParseStatus::kDone : ParseStatus::kIncomplete) << i;
  }
}

TEST(RequestParser, BadChunkFramingIsAnError) {
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (const char* body : {"zz\r\nabc\r\n0\r\n\r\n", "3\r\nabcd\r\n0\r\n\r\n",
                           "3\nabc\n0\n\n", "-1\r\n", "3\r\nabc\r\n0\r\n\rX"}) {
    RequestParser parser(Limits{});
    Request req;
    const std::string buf = head + body;
    ASSERT_EQ(parse_request(parser, buf, req), ParseStatus::kDone);
    size_t consumed = 0;
    EXPECT_EQ(parser.feed_body(buf.data() + head.size(), buf.size() - head.size(), &consumed),
              ParseStatus::kError) << body;
    EXPECT_EQ(parser.error().status, 400);
    // The parser is reusable after an error.
    const std::string ok = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    EXPECT_EQ(parse_request(parser, ok, req), ParseStatus::kDone);
  }
}

TEST(RequestParser, ContentLengthBodyCountsDown) {
  RequestParser parser(Limits{});
  Request req;
  const std::string buf =
      "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789GET";
  ASSERT_EQ(parse_request(parser, buf, req), ParseStatus::kDone);
  const char* b = buf.data() + req.head_bytes;
  size_t consumed = 0;
  EXPECT_EQ(parser.feed_body(b, 4, &consumed), ParseStatus::kIncomplete);
  EXPECT_EQ(consumed, 4u);
  EXPECT_EQ(parser.body_remaining(), 6u);
  parser.skip_body(2);  // e.g. spliced by the forwarder
  EXPECT_EQ(parser.feed_body(b + 6, 7, &consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, 4u);  // "GET" belongs to the next request
  EXPECT_EQ(parser.body_remaining(), 0u);

  std::string zero = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n";
  ASSERT_EQ(parse_request(parser, zero, req), ParseStatus::kDone);
  EXPECT_EQ(parser.feed_body("X", 1, &consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, 0u);
}

TEST(RequestParser, ReusableAfterHeadError) {
  RequestParser parser(Limits{});
  Request req;
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\nX_Y: 1\r\n\r\n"), 400);
  const std::string bad = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
  EXPECT_EQ(parse_request(parser, bad, req), ParseStatus::kError);
  const std::string good = "GET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(parse_request(parser, good, req), ParseStatus::kDone);
  EXPECT_EQ(req.path, "/ok");
  EXPECT_EQ(req.header_count, 2);
  // After a Connection: close request llhttp would refuse more input; ours resets per head.
  ASSERT_EQ(parse_request(parser, good, req), ParseStatus::kDone);
}

TEST(RequestParser, SmugglingShapes) {
  // CL.TE / TE.CL / TE.TE variants and bare-CR tricks all rejected.
  EXPECT_NE(status_of("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
                      "Transfer-Encoding : chunked\r\n\r\n"), 0);
  EXPECT_NE(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), 0);
  EXPECT_NE(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0b" "chunked\r\n\r\n"),
            0);
  EXPECT_NE(status_of("POST / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n"), 0);
  EXPECT_NE(status_of("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      " chunked\r\n\r\n"), 0);
  EXPECT_NE(status_of("GET / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n"), 0);
}

}  // namespace
}  // namespace ringway::http
