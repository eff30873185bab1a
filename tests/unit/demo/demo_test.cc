#include "ringway/demo/demo_upstreams.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <charconv>
#include <string>

#include "demo/demo_handlers.h"

namespace ringway::demo {
namespace {

struct Response {
  int status = 0;
  std::string head;  // status line and fields, lower-cased names kept as sent
  std::string body;
  std::string header(std::string_view name) const {
    // Case-insensitive search of "\r\nName: value\r\n".
    std::string lower_head = head;
    std::string lower_name(name);
    for (char& ch : lower_head) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    for (char& ch : lower_name) ch = static_cast<char>(tolower(static_cast<unsigned char>(ch)));
    const size_t at = lower_head.find("\r\n" + lower_name + ": ");
    if (at == std::string::npos) return "<none>";
    const size_t start = at + 2 + lower_name.size() + 2;
    return head.substr(start, head.find("\r\n", start) - start);
  }
};

// A blocking loopback client with a receive timeout so that a broken server fails the test
// instead of hanging it.
class Client {
 public:
  explicit Client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~Client() { ::close(fd_); }
  bool connected() const { return connected_; }

  bool send_all(std::string_view data) {
    while (!data.empty()) {
      const ssize_t w = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (w <= 0) return false;
      data.remove_prefix(static_cast<size_t>(w));
    }
    return true;
  }

  // Reads one Content-Length framed response (skipping 100 Continue). False on EOF/timeout.
  bool read_response(Response& r, bool head_only = false) {
    for (;;) {
      size_t end;
      while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return false;
      }
      r.head = buf_.substr(0, end + 2);
      buf_.erase(0, end + 4);
      if (r.head.size() < 12) return false;
      r.status = std::stoi(r.head.substr(9, 3));
      if (r.status == 100) continue;
      break;
    }
    r.body.clear();
    if (head_only) return true;
    const std::string cl = r.header("Content-Length");
    size_t len = 0;
    if (std::from_chars(cl.data(), cl.data() + cl.size(), len).ec != std::errc()) return false;
    while (buf_.size() < len) {
      if (!fill()) return false;
    }
    r.body = buf_.substr(0, len);
    buf_.erase(0, len);
    return true;
  }

  // True when the server closed the connection (EOF, or reset) with nothing more buffered.
  bool at_eof() {
    if (!buf_.empty()) return false;
    char c;
    const ssize_t r = ::recv(fd_, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
  }

 private:
  bool fill() {
    char tmp[65536];
    const ssize_t r = ::recv(fd_, tmp, sizeof(tmp), 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buf_;
};

class DemoServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(server_.start(0, 0, error)) << error;
    ports_ = server_.ports();
    ASSERT_NE(ports_.users, 0);
    ASSERT_NE(ports_.products, 0);
    ASSERT_NE(ports_.users, ports_.products);
  }

  Response get(uint16_t port, const std::string& request) {
    Client c(port);
    EXPECT_TRUE(c.connected());
    EXPECT_TRUE(c.send_all(request));
    Response r;
    EXPECT_TRUE(c.read_response(r));
    return r;
  }

  DemoServer server_;
  DemoPorts ports_;
  simdjson::dom::parser parser_;
};

TEST_F(DemoServerTest, GetListAndItemWithReceivedEcho) {
  Response r = get(ports_.users, "GET / HTTP/1.1\r\nHost: demo\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  EXPECT_EQ(r.header("X-Demo-Service"), "users");
  simdjson::dom::element doc;
  ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  simdjson::dom::array arr;
  ASSERT_EQ(doc.get(arr), simdjson::SUCCESS);
  EXPECT_EQ(arr.size(), 3u);

  r = get(ports_.users,
          "GET /2?x=1&y=%22 HTTP/1.1\r\nHost: demo\r\nX-Forwarded-For: 10.0.0.7\r\n"
          "X-Gateway: ringway\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  uint64_t id = 0;
  std::string_view s;
  ASSERT_EQ(doc["id"].get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, 2u);
  ASSERT_EQ(doc["name"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "Alan Turing");
  ASSERT_EQ(doc["received"]["method"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "GET");
  ASSERT_EQ(doc["received"]["path"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "/2");
  ASSERT_EQ(doc["received"]["query"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "x=1&y=%22");
  ASSERT_EQ(doc["received"]["x_forwarded_for"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "10.0.0.7");
  ASSERT_EQ(doc["received"]["x_gateway"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "ringway");

  r = get(ports_.products, "GET /3 HTTP/1.1\r\nHost: demo\r\n\r\n");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("X-Demo-Service"), "products");
  ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  ASSERT_EQ(doc["id"].get(id), simdjson::SUCCESS);
  EXPECT_EQ(id, 3u);
  EXPECT_TRUE(doc["received"]["query"].is_null());
  EXPECT_TRUE(doc["received"]["x_forwarded_for"].is_null());
}

TEST_F(DemoServerTest, UnknownIdAndPathAre404Json) {
  for (const char* path : {"/99", "/abc", "/api/users/1", "/1/2"}) {
    Response r = get(ports_.users, std::string("GET ") + path + " HTTP/1.1\r\nHost: d\r\n\r\n");
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.header("X-Demo-Service"), "users");
    simdjson::dom::element doc;
    ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
    std::string_view s;
    ASSERT_EQ(doc["received"]["path"].get(s), simdjson::SUCCESS);
    EXPECT_EQ(s, path);
  }
  Response r = get(ports_.products, "DELETE /1 HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("Allow"), "GET, HEAD");
  r = get(ports_.products, "POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}");
  EXPECT_EQ(r.status, 405);
}

TEST_F(DemoServerTest, PostEchoesBodyWithId) {
  const std::string body = "{\"name\":\"Barbara Liskov\",\"tags\":[1,2]}";
  Response r = get(ports_.users, "POST / HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
                                 "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.header("X-Demo-Service"), "users");
  simdjson::dom::element doc;
  ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  uint64_t id1 = 0;
  std::string_view s;
  ASSERT_EQ(doc["id"].get(id1), simdjson::SUCCESS);
  ASSERT_EQ(doc["name"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "Barbara Liskov");
  simdjson::dom::array tags;
  ASSERT_EQ(doc["tags"].get(tags), simdjson::SUCCESS);
  EXPECT_EQ(tags.size(), 2u);

  // Chunked body (two chunks and an extension), same result, next id.
  r = get(ports_.users,
          "POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
          "6;ext=1\r\n{\"name\r\n8\r\n\":\"Bob\"}\r\n0\r\n\r\n");
  EXPECT_EQ(r.status, 201);
  ASSERT_EQ(parser_.parse(r.body).get(doc), simdjson::SUCCESS) << r.body;
  uint64_t id2 = 0;
  ASSERT_EQ(doc["id"].get(id2), simdjson::SUCCESS);
  EXPECT_EQ(id2, id1 + 1);
  ASSERT_EQ(doc["name"].get(s), simdjson::SUCCESS);
  EXPECT_EQ(s, "Bob");

  // Not a JSON object: 400.
  r = get(ports_.users, "POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 5\r\n\r\n[1,2]");
  EXPECT_EQ(r.status, 400);
}

TEST_F(DemoServerTest, KeepAliveTwoRequestsOneSocket) {
  Client c(ports_.users);
  ASSERT_TRUE(c.connected());
  Response r;
  ASSERT_TRUE(c.send_all("GET /1 HTTP/1.1\r\nHost: d\r\n\r\n"));
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Connection"), "<none>");
  EXPECT_NE(r.body.find("Ada Lovelace"), std::string::npos);
  ASSERT_TRUE(c.send_all("GET /3 HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Grace Hopper"), std::string::npos);
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(DemoServerTest, PipelinedRequestsAnsweredInOrder) {
  Client c(ports_.products);
  ASSERT_TRUE(c.connected());
  std::string batch;
  for (int i = 0; i < 50; ++i) {
    batch += "GET /" + std::to_string(i % 4) + " HTTP/1.1\r\nHost: d\r\n\r\n";
    if (i == 10) batch += "POST /1 HTTP/1.1\r\nHost: d\r\nContent-Length: 3\r\n\r\nabc";
  }
  // Split mid-request so the server sees partial heads too.
  const size_t half = batch.size() / 2 + 7;
  ASSERT_TRUE(c.send_all(std::string_view(batch).substr(0, half)));
  ASSERT_TRUE(c.send_all(std::string_view(batch).substr(half)));
  for (int i = 0; i < 50; ++i) {
    Response r;
    ASSERT_TRUE(c.read_response(r)) << i;
    const int id = i % 4;
    EXPECT_EQ(r.status, id == 0 ? 404 : 200) << i;
    if (id != 0) {
      EXPECT_NE(r.body.find("\"id\":" + std::to_string(id) + ","), std::string::npos) << r.body;
    }
    if (i == 10) {
      ASSERT_TRUE(c.read_response(r));
      EXPECT_EQ(r.status, 405);
    }
  }
}

TEST_F(DemoServerTest, HeadHasNoBody) {
  Client c(ports_.users);
  ASSERT_TRUE(c.send_all("HEAD /1 HTTP/1.1\r\nHost: d\r\n\r\nGET /2 HTTP/1.1\r\nHost: d\r\n\r\n"));
  // The HEAD response announces a length but carries no content, so the next bytes are the
  // second response's status line.
  Response r;
  ASSERT_TRUE(c.read_response(r, /*head_only=*/true));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.header("Content-Length"), "0");
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("Alan Turing"), std::string::npos);
}

TEST_F(DemoServerTest, OversizedBodyIs413AndCloses) {
  Client c(ports_.users);
  ASSERT_TRUE(c.send_all("POST / HTTP/1.1\r\nHost: d\r\nContent-Length: 2000000\r\n\r\n{\"a\":"));
  Response r;
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(c.at_eof());

  // Chunked beyond the limit: 413 as well.
  Client c2(ports_.users);
  ASSERT_TRUE(c2.send_all("POST / HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk = "10000\r\n" + std::string(0x10000, ' ') + "\r\n";
  bool sent_all = true;
  for (int i = 0; i < 40 && sent_all; ++i) sent_all = c2.send_all(chunk);  // 2.5 MiB
  ASSERT_TRUE(c2.read_response(r));
  EXPECT_EQ(r.status, 413);
}

TEST_F(DemoServerTest, MalformedRequestIs400AndCloses) {
  Client c(ports_.users);
  ASSERT_TRUE(c.send_all("GET / HTTP/1.1\r\nHost: d\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"));
  Response r;
  ASSERT_TRUE(c.read_response(r));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.header("X-Demo-Service"), "users");
  EXPECT_TRUE(c.at_eof());
}

TEST_F(DemoServerTest, StopIsPromptAndRestartable) {
  server_.stop();
  server_.stop();  // idempotent
  std::string error;
  DemoServer other;
  ASSERT_TRUE(other.start(0, 0, error)) << error;
  Response r = get(other.ports().users, "GET /1 HTTP/1.1\r\nHost: d\r\n\r\n");
  EXPECT_EQ(r.status, 200);
}

TEST(DemoStart, BusyPortIsAnError) {
  DemoServer a;
  std::string error;
  ASSERT_TRUE(a.start(0, 0, error)) << error;
  DemoServer b;
  EXPECT_FALSE(b.start(a.ports().users, 0, error));
  EXPECT_NE(error.find("users"), std::string::npos) << error;
}

TEST(DemoChunked, Decode) {
  std::string out;
  EXPECT_TRUE(decode_chunked("3\r\nabc\r\n1;x=y\r\nd\r\n0\r\nTrailer: v\r\n\r\n", out));
  EXPECT_EQ(out, "abcd");
  out.clear();
  EXPECT_TRUE(decode_chunked("A\r\n0123456789\r\n0\r\n\r\n", out));
  EXPECT_EQ(out, "0123456789");
  out.clear();
  EXPECT_FALSE(decode_chunked("5\r\nab", out));
  EXPECT_FALSE(decode_chunked("zz\r\n", out));
}

}  // namespace
}  // namespace ringway::demo
