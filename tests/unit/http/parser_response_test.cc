#include <gtest/gtest.h>

#include <string>

#include "ringway/http/parser.h"
#include "test_util.h"

namespace ringway::http {
namespace {

using test::parse_response;

uint16_t status_of(const std::string& head, bool was_head = false,
                   const Limits& limits = Limits{}) {
  ResponseParser parser(limits);
  Response resp;
  const ParseStatus st = parse_response(parser, head, resp, was_head);
  if (st == ParseStatus::kDone) return 0;
  EXPECT_EQ(st, ParseStatus::kError);
  EXPECT_FALSE(parser.error().detail.empty());
  return parser.error().status;
}

TEST(ResponseParser, ContentLengthResponse) {
  ResponseParser parser(Limits{});
  Response resp;
  const std::string s =
      "HTTP/1.1 200 Okay Then\r\nContent-Length: 5\r\nX-A:  v \r\n\r\nhelloHTTP/1.1";
  ASSERT_EQ(parse_response(parser, s, resp), ParseStatus::kDone) << parser.error().detail;
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.reason, "Okay Then");
  EXPECT_EQ(resp.version_minor, 1);
  EXPECT_EQ(resp.framing, ResponseFraming::kLength);
  EXPECT_EQ(resp.content_length, 5u);
  EXPECT_TRUE(resp.keep_alive);
  ASSERT_EQ(resp.header_count, 2);
  EXPECT_EQ(resp.headers[1].value, "v");
  EXPECT_EQ(resp.head_bytes, s.size() - 13);
  size_t consumed = 0;
  EXPECT_EQ(parser.feed_body(s.data() + resp.head_bytes, 13, &consumed), ParseStatus::kDone);
  EXPECT_EQ(consumed, 5u);
  EXPECT_EQ(parser.finish_eof(), ParseStatus::kDone);
}

TEST(ResponseParser, ChunkedSplitAtEveryByte) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
  const std::string next = "HTTP/1.1 204 No Content\r\n\r\n";
  const std::string buf = head + body + next;
  for (size_t split = 0; split <= body.size(); ++split) {
    ResponseParser parser(Limits{});
    Response resp;
    ASSERT_EQ(parse_response(parser, buf, resp), ParseStatus::kDone);
    ASSERT_EQ(resp.framing, ResponseFraming::kChunked);
    const char* b = buf.data() + head.size();
    size_t c1 = 0, c2 = 0;
    ParseStatus st = parser.feed_body(b, split, &c1);
    if (split < body.size()) {
      ASSERT_EQ(st, ParseStatus::kIncomplete);
      EXPECT_EQ(parser.finish_eof(), ParseStatus::kError);  // truncated here
      st = parser.feed_body(b + c1, buf.size() - head.size() - c1, &c2);
    }
    ASSERT_EQ(st, ParseStatus::kDone) << split;
    ASSERT_EQ(c1 + c2, body.size()) << split;
    EXPECT_EQ(parser.finish_eof(), ParseStatus::kDone);
    const char* n = b + c1 + c2;
    ASSERT_EQ(parser.parse_head(n, find_head_end(n, next.size()), false, resp),
              ParseStatus::kDone);
    EXPECT_EQ(resp.status, 204);
  }
}

TEST(ResponseParser, ChunkedBodyDecodedInPlaceSplitAtEveryByte) {
  const std::string head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "5\r\nhello\r\n6;x=y\r\n world\r\nB\r\n 0123456789\r\n0\r\nX-T: 1\r\n\r\n";
  const std::string next = "HTTP/1.1 204 No Content\r\n\r\n";
  for (size_t split = 0; split <= body.size(); ++split) {
    std::string buf = head + body + next;  // decoded in place: a fresh copy each time
    ResponseParser parser(Limits{});
    Response resp;
    ASSERT_EQ(parse_response(parser, buf, resp), ParseStatus::kDone);
    char* b = buf.data() + head.size();
    size_t c1 = 0, d1 = 0, c2 = 0, d2 = 0;
    ParseStatus st = parser.feed_body_decoded(b, split, &c1, &d1);
    std::string decoded(b, d1);
    if (split < body.size()) {
      ASSERT_EQ(st, ParseStatus::kIncomplete) << split;
      st = parser.feed_body_decoded(b + c1, buf.size() - head.size() - c1, &c2, &d2);
      decoded.append(b + c1, d2);
    }
    ASSERT_EQ(st, ParseStatus::kDone) << split;
    EXPECT_EQ(c1 + c2, body.size()) << split;
    EXPECT_EQ(decoded, "hello world 0123456789") << split;
    const char* n = b + c1 + c2;  // the next response is untouched
    ASSERT_EQ(parser.parse_head(n, find_head_end(n, next.size()), false, resp),
              ParseStatus::kDone);
    EXPECT_EQ(resp.status, 204);
  }
  // Only chunked bodies can be decoded.
  ResponseParser parser(Limits{});
  Response resp;
  std::string s = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
  ASSERT_EQ(parse_response(parser, s, resp), ParseStatus::kDone);
  size_t c = 0, d = 0;
  EXPECT_EQ(parser.feed_body_decoded(s.data() + resp.head_bytes, 2, &c, &d), ParseStatus::kError);
  EXPECT_EQ(d, 0u);
}

TEST(ResponseParser, BadChunkIs502) {
  ResponseParser parser(Limits{});
  Response resp;
  const std::string s = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nXYZ\r\n";
  ASSERT_EQ(parse_response(parser, s, resp), ParseStatus::kDone);
  size_t consumed = 0;
  const size_t off = resp.head_bytes;
  EXPECT_EQ(parser.feed_body(s.data() + off, s.size() - off, &consumed), ParseStatus::kError);
  EXPECT_EQ(parser.error().status, 502);
}

TEST(ResponseParser, NoBodyStatusesAndHead) {
  ResponseParser parser(Limits{});
  Response resp;
  struct Case { const char* head; bool was_head; } cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", true},
      {"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false},
      {"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
      {"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false},
      {"HTTP/1.1 204 No Content\r\n\r\n", false},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
  };
  for (const Case& c : cases) {
    // A next response follows directly: none of its bytes may be taken as a body.
    const std::string s = std::string(c.head) + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    ASSERT_EQ(parse_response(parser, s, resp, c.was_head), ParseStatus::kDone) << c.head;
    EXPECT_EQ(resp.framing, ResponseFraming::kNone) << c.head;
    EXPECT_TRUE(resp.keep_alive) << c.head;
    size_t consumed = 99;
    EXPECT_EQ(parser.feed_body(s.data() + resp.head_bytes, s.size() - resp.head_bytes, &consumed),
              ParseStatus::kDone);
    EXPECT_EQ(consumed, 0u);
    EXPECT_EQ(parser.finish_eof(), ParseStatus::kDone);
    const char* n = s.data() + resp.head_bytes;
    ASSERT_EQ(parser.parse_head(n, find_head_end(n, s.size() - resp.head_bytes), false, resp),
              ParseStatus::kDone);
    EXPECT_EQ(resp.status, 200);
  }
}

TEST(ResponseParser, InterimResponses) {
  ResponseParser parser(Limits{});
  Response resp;
  const std::string s =
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
      "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  size_t off = 0;
  uint16_t seen[3] = {};
  for (int i = 0; i < 3; ++i) {
    const size_t n = find_head_end(s.data() + off, s.size() - off);
    ASSERT_GT(n, 0u);
    ASSERT_EQ(parser.parse_head(s.data() + off, n, false, resp), ParseStatus::kDone);
    seen[i] = resp.status;
    if (resp.status < 200) {
      EXPECT_EQ(resp.framing, ResponseFraming::kNone);
    }
    off += n;
  }
  EXPECT_EQ(seen[0], 100);
  EXPECT_EQ(seen[1], 103);
  EXPECT_EQ(seen[2], 201);
  EXPECT_EQ(resp.framing, ResponseFraming::kLength);
  EXPECT_EQ(s.size() - off, 2u);
  EXPECT_EQ(status_of("HTTP/1.1 101 Switching Protocols\r\nUpgrade: ws\r\n"
                      "Connection: upgrade\r\n\r\n"), 502);
}

TEST(ResponseParser, CloseDelimited) {
  ResponseParser parser(Limits{});
  Response resp;
  for (const char* head : {"HTTP/1.1 200 OK\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                           "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"}) {
    ASSERT_EQ(parse_response(parser, head, resp), ParseStatus::kDone) << head;
    EXPECT_EQ(resp.framing, ResponseFraming::kUntilClose) << head;
    EXPECT_FALSE(resp.keep_alive) << head;
    size_t consumed = 0;
    EXPECT_EQ(parser.feed_body("abcdef", 6, &consumed), ParseStatus::kIncomplete);
    EXPECT_EQ(consumed, 6u);
    EXPECT_EQ(parser.finish_eof(), ParseStatus::kDone);
  }
}

TEST(ResponseParser, TruncatedLengthBody) {
  ResponseParser parser(Limits{});
  Response resp;
  ASSERT_EQ(parse_response(parser, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", resp),
            ParseStatus::kDone);
  size_t consumed = 0;
  EXPECT_EQ(parser.feed_body("abc", 3, &consumed), ParseStatus::kIncomplete);
  EXPECT_EQ(parser.body_remaining(), 7u);
  EXPECT_EQ(parser.finish_eof(), ParseStatus::kError);
  EXPECT_EQ(parser.error().status, 502);
}

TEST(ResponseParser, KeepAliveRules) {
  ResponseParser parser(Limits{});
  Response resp;
  ASSERT_EQ(parse_response(parser, "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", resp),
            ParseStatus::kDone);
  EXPECT_FALSE(resp.keep_alive);
  EXPECT_EQ(resp.version_minor, 0);
  ASSERT_EQ(parse_response(parser, "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n"
                                   "Content-Length: 1\r\n\r\n", resp), ParseStatus::kDone);
  EXPECT_TRUE(resp.keep_alive);
  // The response's views point into the head: it must outlive the checks below.
  const std::string head = "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nContent-Length: 1\r\n\r\n";
  ASSERT_EQ(parse_response(parser, head, resp), ParseStatus::kDone);
  EXPECT_FALSE(resp.keep_alive);
  ASSERT_EQ(resp.connection_token_count, 1);
  EXPECT_EQ(resp.connection_tokens[0], "X-Hop");
}

TEST(ResponseParser, Rejections) {
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\n: a\r\nContent-Length: 0\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), 502);
  EXPECT_EQ(status_of("HTTP/1.1 2000 OK\r\n\r\n"), 502);
  EXPECT_EQ(status_of("garbage\r\n\r\n"), 502);
  Limits lim;
  lim.max_head_bytes = 64;
  lim.max_header_count = 2;
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", false, lim), 502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nA: " + std::string(80, 'x') + "\r\n\r\n", false, lim),
            502);
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n", false, lim), 0);
  // Underscores are fine from upstreams (only requests are restricted).
  EXPECT_EQ(status_of("HTTP/1.1 200 OK\r\nX_Y: 1\r\nContent-Length: 0\r\n\r\n"), 0);
}

}  // namespace
}  // namespace ringway::http
