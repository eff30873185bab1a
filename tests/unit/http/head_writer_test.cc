#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ringway/http/head_writer.h"
#include "ringway/http/parser.h"
#include "test_util.h"

namespace ringway::http {
namespace {

// Parses `head` and writes the upstream head for it.
class UpstreamHead : public ::testing::Test {
 protected:
  std::string write(const std::string& head, const UpstreamHeadParams& p) {
    src_ = head;
    EXPECT_EQ(test::parse_request(parser_, src_, req_), ParseStatus::kDone) << parser_.error().detail;
    char buf[4096];
    const size_t n = write_upstream_head(buf, sizeof(buf), req_, p);
    EXPECT_GT(n, 0u);
    return std::string(buf, n);
  }
  static UpstreamHeadParams params() {
    UpstreamHeadParams p;
    p.authority = "backend:9000";
    p.client_addr = "10.0.0.1";
    return p;
  }
  RequestParser parser_{Limits{}};
  Request req_;
  std::string src_;
};

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) ++n;
  return n;
}

TEST_F(UpstreamHead, PrefixStripAndByteExactQuery) {
  UpstreamHeadParams p = params();
  p.base_path = "/v2";
  p.path_remainder = "/profile";
  const std::string out =
      write("GET /api/profile?x=1&y=%20 HTTP/1.1\r\nHost: gw.example\r\n\r\n", p);
  EXPECT_EQ(out,
            "GET /v2/profile?x=1&y=%20 HTTP/1.1\r\n"
            "Host: backend:9000\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Host: gw.example\r\n"
            "X-Forwarded-Proto: http\r\n"
            "\r\n");
}

TEST_F(UpstreamHead, DroppedQueryParameterOnly) {
  // An API key passed as a query parameter is a credential for the gateway, not the upstream.
  HeaderEdits edits;
  edits.remove_query_param = "api_key";
  UpstreamHeadParams p = params();
  p.path_remainder = "/a";
  p.edits = &edits;
  auto line = [&](const std::string& target) {
    const std::string out = write("GET " + target + " HTTP/1.1\r\nHost: h\r\n\r\n", p);
    return out.substr(0, out.find("\r\n"));
  };
  EXPECT_EQ(line("/a?api_key=s3cret&y=%20&z"), "GET /a?y=%20&z HTTP/1.1");
  EXPECT_EQ(line("/a?x=1&api_key=s3cret"), "GET /a?x=1 HTTP/1.1");
  EXPECT_EQ(line("/a?api_key=s3cret"), "GET /a HTTP/1.1");
  EXPECT_EQ(line("/a?api_keyX=1&api_key"), "GET /a?api_keyX=1 HTTP/1.1");
}

TEST_F(UpstreamHead, PathJoining) {
  struct Case { const char* base; const char* rest; const char* line; } cases[] = {
      {"", "", "GET / HTTP/1.1"},          {"", "/a", "GET /a HTTP/1.1"},
      {"/v1", "", "GET /v1/ HTTP/1.1"},    {"/v1", "/a/b", "GET /v1/a/b HTTP/1.1"},
      {"/v1", "a", "GET /v1/a HTTP/1.1"},
  };
  for (const Case& c : cases) {
    UpstreamHeadParams p = params();
    p.base_path = c.base;
    p.path_remainder = c.rest;
    const std::string out = write("GET /x HTTP/1.1\r\nHost: h\r\n\r\n", p);
    EXPECT_EQ(out.substr(0, out.find("\r\n")), c.line) << c.base << "|" << c.rest;
  }
  UpstreamHeadParams p = params();
  const std::string out = write("GET /x? HTTP/1.0\r\n\r\n", p);  // empty query kept, 1.0 -> 1.1
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /? HTTP/1.1");
  EXPECT_EQ(count(out, "X-Forwarded-Host"), 0u);  // HTTP/1.0 without Host
  EXPECT_NE(out.find("Host: backend:9000\r\n"), std::string::npos);
}

TEST_F(UpstreamHead, HopByHopAndRewrittenFieldsRemoved) {
  UpstreamHeadParams p = params();
  const std::string out = write(
      "POST /x HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Secret, x-forwarded-for\r\n"
      "Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\n"
      "Trailer: X-T\r\nUpgrade: websocket\r\nX-Secret: s\r\nExpect: 100-continue\r\n"
      "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\n"
      "Accept: */*\r\nContent-Length: 3\r\nX-Keep: 1\r\n\r\n", p);
  EXPECT_EQ(out,
            "POST / HTTP/1.1\r\n"
            "Accept: */*\r\n"
            "X-Keep: 1\r\n"
            "Host: backend:9000\r\n"
            "X-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Host: h\r\n"
            "X-Forwarded-Proto: http\r\n"
            "Content-Length: 3\r\n"
            "\r\n");
  EXPECT_EQ(count(out, "onnection"), 0u);
}

TEST_F(UpstreamHead, ForwardedForAppends) {
  UpstreamHeadParams p = params();
  p.proto = "https";
  const std::string out = write(
      "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.1.1.1\r\nx-forwarded-for: 2.2.2.2, 3.3.3.3\r\n\r\n",
      p);
  EXPECT_NE(out.find("X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1\r\n"), std::string::npos);
  EXPECT_EQ(count(out, "orwarded-For"), 1u);
  EXPECT_NE(out.find("X-Forwarded-Proto: https\r\n"), std::string::npos);
}

TEST_F(UpstreamHead, HostPreserved) {
  UpstreamHeadParams p = params();
  p.preserve_host = true;
  const std::string out = write("GET / HTTP/1.1\r\nHost: public.example\r\n\r\n", p);
  EXPECT_NE(out.find("\r\nHost: public.example\r\n"), std::string::npos);
  EXPECT_EQ(count(out, "Host: "), 2u);  // Host and X-Forwarded-Host
}

TEST_F(UpstreamHead, FramingIsExactlyOneField) {
  UpstreamHeadParams p = params();
  std::string out = write("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", p);
  EXPECT_EQ(count(out, "Transfer-Encoding: chunked\r\n"), 1u);
  EXPECT_EQ(count(out, "Content-Length"), 0u);
  out = write("POST / HTTP/1.1\r\nHost: h\r\n\r\n", p);
  EXPECT_EQ(count(out, "Content-Length: 0\r\n"), 1u);
  out = write("GET / HTTP/1.1\r\nHost: h\r\n\r\n", p);
  EXPECT_EQ(count(out, "Content-Length"), 0u);
  EXPECT_EQ(count(out, "Transfer-Encoding"), 0u);
  out = write("PUT / HTTP/1.1\r\nHost: h\r\ncontent-length: 012\r\n\r\n", p);
  EXPECT_EQ(count(out, "Content-Length: 12\r\n"), 1u);
  EXPECT_EQ(count(out, "ontent-length"), 0u);
}

TEST_F(UpstreamHead, EditsAndAddHeaderPrecedence) {
  HeaderEdits edits;
  edits.push_remove("Authorization");
  edits.push_add("X-Consumer", "alice");
  const Header adds[] = {{"X-Gateway", "ringway"}, {"X-Env", "prod"}};
  UpstreamHeadParams p = params();
  p.edits = &edits;
  p.add_headers = adds;
  const std::string out = write(
      "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Gateway\r\nAuthorization: Bearer t\r\n"
      "x-gateway: evil\r\nX-ENV: dev\r\nX-Other: o\r\n\r\n", p);
  EXPECT_EQ(count(out, "Authorization"), 0u);
  EXPECT_EQ(count(out, "evil"), 0u);
  EXPECT_EQ(count(out, "dev"), 0u);
  EXPECT_NE(out.find("X-Other: o\r\n"), std::string::npos);
  // Gateway fields come last, in order: edits, then add_headers.
  const std::string tail = "X-Consumer: alice\r\nX-Gateway: ringway\r\nX-Env: prod\r\n\r\n";
  ASSERT_GE(out.size(), tail.size());
  EXPECT_EQ(out.substr(out.size() - tail.size()), tail);
}

TEST_F(UpstreamHead, AggregateLegIsABodilessGetPassingOnlyNamedFields) {
  UpstreamHeadParams p = params();
  const std::vector<std::string> pass = {"x-trace", "X-Api-Key", "Content-Type"};
  HeaderEdits edits;
  edits.push_remove("X-Api-Key");
  edits.remove_query_param = "key";
  p.edits = &edits;
  p.method = "GET";
  p.pass_only = pass;
  p.no_body = true;
  p.base_path = "/svc";
  p.path_remainder = "/users/7";
  const std::string out = write(
      "POST /agg/7?key=secret&a=1 HTTP/1.1\r\nHost: gw\r\nX-Trace: t\r\nX-Api-Key: secret\r\n"
      "X-Other: o\r\nContent-Type: text/plain\r\nX-Forwarded-Proto: https\r\n"
      "Content-Length: 3\r\n\r\n",
      p);
  EXPECT_EQ(out.substr(0, out.find("\r\n")), "GET /svc/users/7?a=1 HTTP/1.1");
  EXPECT_NE(out.find("\r\nX-Trace: t\r\n"), std::string::npos);
  EXPECT_NE(out.find("\r\nContent-Type: text/plain\r\n"), std::string::npos);
  EXPECT_EQ(out.find("secret"), std::string::npos);
  EXPECT_EQ(out.find("X-Other"), std::string::npos);
  EXPECT_EQ(out.find("Content-Length"), std::string::npos);
  EXPECT_EQ(count(out, "X-Forwarded-Proto: http\r\n"), 1u);
  EXPECT_NE(out.find("\r\nX-Forwarded-For: 10.0.0.1\r\n"), std::string::npos);
}

TEST_F(UpstreamHead, TooSmallBufferReturnsZero) {
  UpstreamHeadParams p = params();
  const std::string full = write("GET /a?b HTTP/1.1\r\nHost: h\r\nAccept: x\r\n\r\n", p);
  std::vector<char> buf(full.size());
  for (size_t cap = 0; cap < full.size(); ++cap) {
    EXPECT_EQ(write_upstream_head(buf.data(), cap, req_, p), 0u) << cap;
  }
  EXPECT_EQ(write_upstream_head(buf.data(), full.size(), req_, p), full.size());
  EXPECT_EQ(std::string(buf.data(), full.size()), full);
}

TEST(DownstreamHead, RebuildsStatusAndDropsHopByHop) {
  ResponseParser parser(Limits{});
  Response resp;
  const std::string src =
      "HTTP/1.0 200 Fine\r\nConnection: keep-alive, X-Internal\r\nKeep-Alive: timeout=3\r\n"
      "X-Internal: 1\r\nContent-Length: 2\r\nUpgrade: h2c\r\nServer: s\r\n\r\n";
  ASSERT_EQ(test::parse_response(parser, src, resp), ParseStatus::kDone);
  const Header adds[] = {{"RateLimit-Remaining", "9"}};
  DownstreamHeadParams p;
  p.add_headers = adds;
  p.close = true;
  char buf[1024];
  const size_t n = write_downstream_head(buf, sizeof(buf), resp, p);
  EXPECT_EQ(std::string(buf, n),
            "HTTP/1.1 200 Fine\r\nContent-Length: 2\r\nServer: s\r\n"
            "RateLimit-Remaining: 9\r\nConnection: close\r\n\r\n");
  for (size_t cap = 0; cap < n; ++cap) EXPECT_EQ(write_downstream_head(buf, cap, resp, p), 0u);

  const std::string chunked = "HTTP/1.1 404 \r\nTransfer-Encoding: chunked\r\n\r\n";
  ASSERT_EQ(test::parse_response(parser, chunked, resp), ParseStatus::kDone);
  const size_t m = write_downstream_head(buf, sizeof(buf), resp, DownstreamHeadParams{});
  EXPECT_EQ(std::string(buf, m), "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n");

  // For an HTTP/1.0 client the body goes out decoded and close-delimited.
  DownstreamHeadParams d;
  d.dechunk = true;
  d.close = true;
  const size_t k = write_downstream_head(buf, sizeof(buf), resp, d);
  EXPECT_EQ(std::string(buf, k), "HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n");
}

// Splits a problem reply into head and body and checks Content-Length against the body.
std::string problem_body(const std::string& reply) {
  const size_t sep = reply.find("\r\n\r\n");
  EXPECT_NE(sep, std::string::npos);
  const std::string head = reply.substr(0, sep + 4);
  const std::string body = reply.substr(sep + 4);
  const size_t cl = head.find("Content-Length: ");
  EXPECT_NE(cl, std::string::npos);
  EXPECT_EQ(std::stoul(head.substr(cl + 16)), body.size());
  return body;
}

TEST(Problem, ShapeAndEscaping) {
  char buf[1024];
  const Header extra[] = {{"Retry-After", "3"}};
  size_t n = write_problem(buf, sizeof(buf), 429, "slow \"down\"\\\n\x01", true, extra);
  const std::string reply(buf, n);
  EXPECT_EQ(reply.rfind("HTTP/1.1 429 Too Many Requests\r\n", 0), 0u);
  EXPECT_NE(reply.find("\r\nContent-Type: application/problem+json\r\n"), std::string::npos);
  EXPECT_NE(reply.find("\r\nConnection: close\r\n"), std::string::npos);
  EXPECT_NE(reply.find("\r\nRetry-After: 3\r\n"), std::string::npos);
  EXPECT_EQ(problem_body(reply),
            "{\"type\":\"about:blank\",\"title\":\"Too Many Requests\",\"status\":429,"
            "\"detail\":\"slow \\\"down\\\"\\\\\\n\\u0001\"}");

  n = write_problem(buf, sizeof(buf), 404, "no route", false);
  const std::string r2(buf, n);
  EXPECT_EQ(r2.find("Connection"), std::string::npos);
  EXPECT_EQ(problem_body(r2),
            "{\"type\":\"about:blank\",\"title\":\"Not Found\",\"status\":404,"
            "\"detail\":\"no route\"}");
}

TEST(Problem, TruncatesDetailToFit) {
  const std::string detail(600, 'd');
  char buf[512];
  const size_t n = write_problem(buf, sizeof(buf), 400, detail, true);
  ASSERT_GT(n, 0u);
  ASSERT_LE(n, sizeof(buf));
  const std::string body = problem_body(std::string(buf, n));
  EXPECT_EQ(body.substr(body.size() - 2), "\"}");
  EXPECT_NE(body.find("\"detail\":\"ddd"), std::string::npos);
  // Escapes are never cut in half, UTF-8 sequences neither.
  const std::string quotes(300, '"');
  const size_t q = write_problem(buf, 300, 400, quotes, false);
  const std::string qb = problem_body(std::string(buf, q));
  EXPECT_EQ(qb.substr(qb.size() - 4), "\\\"\"}");
  std::string utf;
  for (int i = 0; i < 200; ++i) utf += "\xc3\xa9";
  for (size_t cap = 200; cap < 320; ++cap) {
    const size_t u = write_problem(buf, cap, 400, utf, false);
    ASSERT_GT(u, 0u) << cap;
    const std::string ub = problem_body(std::string(buf, u));
    const size_t d = ub.find("\"detail\":\"") + 10;
    EXPECT_EQ((ub.size() - 2 - d) % 2, 0u) << cap;  // whole two-byte characters only
  }
  EXPECT_EQ(write_problem(buf, 20, 400, "x", false), 0u);
}

TEST(ReasonPhrase, KnownAndUnknown) {
  EXPECT_EQ(reason_phrase(200), "OK");
  EXPECT_EQ(reason_phrase(414), "URI Too Long");
  EXPECT_EQ(reason_phrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(reason_phrase(502), "Bad Gateway");
  EXPECT_EQ(reason_phrase(599), "Unknown");
}

}  // namespace
}  // namespace ringway::http
