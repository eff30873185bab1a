// A real Worker on loopback with a test filter chain that pauses exchanges: a paused exchange waits
// (nothing reaches the upstream), resumes with the next filter when told to, answers with the
// filter's reply when refused, times out with 504, and a late or stale resume does nothing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ringway/config/config.h"
#include "ringway/filter/filter.h"
#include "ringway/obs/metrics.h"
#include "ringway/route/router.h"
#include "ringway/upstream/cluster.h"
#include "server/worker.h"

namespace ringway {
namespace {

int listen_any(uint16_t& port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  EXPECT_EQ(listen(fd, 64), 0);
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return fd;
}

uint16_t free_port() {
  uint16_t port = 0;
  close(listen_any(port));
  return port;
}

// Reads until `pred` holds or timeout_ms passes; returns what arrived.
std::string read_for(int fd, int timeout_ms, bool until_close = false) {
  std::string out;
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return out;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) return out;
    out.append(buf, static_cast<size_t>(n));
    const size_t head = out.find("\r\n\r\n");
    if (!until_close && head != std::string::npos) {
      const size_t cl = out.find("Content-Length: ");
      if (cl != std::string::npos && cl < head) {
        const size_t len = std::stoul(out.substr(cl + 16));
        if (out.size() >= head + 4 + len) return out;
      }
    }
  }
}

// A keep-alive upstream answering every request with "<target>|<X-Tag value>".
class Upstream {
 public:
  Upstream() {
    fd_ = listen_any(port_);
    thread_ = std::thread([this] { serve(); });
  }
  ~Upstream() {
    stop_ = true;
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& t : conns_) t.join();
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> seen() {
    std::lock_guard<std::mutex> l(mu_);
    return seen_;
  }

 private:
  void serve() {
    while (!stop_) {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conns_.emplace_back([this, c] {
        std::string in;
        char buf[4096];
        for (;;) {
          ssize_t n = recv(c, buf, sizeof(buf), 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
          size_t end;
          while ((end = in.find("\r\n\r\n")) != std::string::npos) {
            const std::string head = in.substr(0, end);
            in.erase(0, end + 4);
            const std::string target = head.substr(head.find(' ') + 1, head.find(' ', head.find(' ') + 1) - head.find(' ') - 1);
            std::string tag;
            const size_t t = head.find("\r\nX-Tag: ");
            if (t != std::string::npos) tag = head.substr(t + 9, head.find("\r\n", t + 2) - t - 9);
            {
              std::lock_guard<std::mutex> l(mu_);
              seen_.push_back(target);
            }
            const std::string body = target + "|" + tag;
            const std::string resp = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
            (void)!send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
          }
        }
        close(c);
      });
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::mutex mu_;
  std::vector<std::string> seen_;
};

// /hold... pauses; /release resumes every held exchange with kContinue, /reject with a 403.
struct Gate {
  std::vector<filter::Resumer> held;
};

class GateFilter : public filter::Filter {
 public:
  explicit GateFilter(Gate* g) : gate_(g) {}
  filter::Verdict on_request(filter::RequestContext& ctx) override {
    const std::string_view path = ctx.request.path;
    if (path.substr(0, 5) == "/hold") {
      gate_->held.push_back(ctx.resumer);
      return filter::Verdict::kPause;
    }
    if (path == "/release" || path == "/reject") {
      std::vector<filter::Resumer> held = std::move(gate_->held);
      gate_->held.clear();
      filter::LocalReply reply;
      reply.status = 403;
      reply.detail = "refused by the gate";
      for (const filter::Resumer& r : held) {
        r.resume(path == "/release" ? filter::Verdict::kContinue : filter::Verdict::kRespond, &reply);
      }
      // A second resume of the same exchanges is stale and must do nothing.
      for (const filter::Resumer& r : held) r.resume(filter::Verdict::kContinue);
    }
    return filter::Verdict::kContinue;
  }

 private:
  Gate* gate_;
};

// Runs after the gate: proves the chain goes on after a pause, with edits kept. Also a response
// filter: the client's response carries the upstream status it saw.
class TagFilter : public filter::Filter {
 public:
  explicit TagFilter(std::atomic<int>* calls) : calls_(calls) {}
  filter::Verdict on_request(filter::RequestContext& ctx) override {
    calls_->fetch_add(1);
    ctx.edits.push_add("X-Tag", ctx.keep("after-gate"));
    return filter::Verdict::kContinue;
  }
  bool wants_response() const override { return true; }
  void on_response(filter::ResponseContext& ctx) override {
    ctx.add("X-Seen-Status", ctx.keep(std::to_string(ctx.response.status)));
  }

 private:
  std::atomic<int>* calls_;
};

template <class F, class... Args>
class Factory : public filter::FilterFactory {
 public:
  explicit Factory(Args... args) : args_(args...) {}
  std::unique_ptr<filter::Filter> create(unsigned, unsigned) const override {
    return std::apply([](auto... a) { return std::make_unique<F>(a...); }, args_);
  }

 private:
  std::tuple<Args...> args_;
};

class PauseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    const std::string listen = "127.0.0.1:" + std::to_string(port_);
    const std::string route = "/=http://127.0.0.1:" + std::to_string(upstream_.port());
    std::vector<std::string> args = {"ringway", "--listen", listen, "--threads", "1", "--route", route,
                                     "--upstream-response-timeout", "1s", "--access-log", "off"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    config::LoadResult r = config::load(static_cast<int>(argv.size()), argv.data());
    ASSERT_TRUE(r.ok) << r.error;
    cfg_ = std::move(r.config);
    shared_.cfg = &cfg_;
    shared_.router = std::make_unique<route::Router>(cfg_.routes, cfg_.aggregates);
    shared_.clusters = std::make_unique<upstream::Clusters>(cfg_);
    shared_.traffic = upstream::build_traffic(*shared_.clusters, cfg_);  // as server.cc does
    shared_.filters.push_back(std::make_unique<Factory<GateFilter, Gate*>>(&gate_));
    shared_.filters.push_back(std::make_unique<Factory<TagFilter, std::atomic<int>*>>(&tag_calls_));
    metrics_ = std::make_unique<obs::MetricsRegistry>(1, std::vector<std::string>{"/"});
    shared_.metrics = metrics_.get();
    shared_.worker_count = 1;
    worker_ = std::make_unique<server::Worker>(shared_, 0);
    thread_ = std::thread([this] {
      std::string error;
      EXPECT_TRUE(worker_->run(error)) << error;
    });
    while (shared_.ready_workers.load() == 0) usleep(1000);
  }
  void TearDown() override {
    shared_.draining.store(true);
    worker_->wake();
    thread_.join();
  }
  int connect_gw() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port_);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    return fd;
  }
  static void get(int fd, const std::string& path) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: gw\r\n\r\n";
    ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  }

  Upstream upstream_;
  uint16_t port_ = 0;
  config::Config cfg_;
  server::Shared shared_;
  std::unique_ptr<obs::MetricsRegistry> metrics_;
  std::unique_ptr<server::Worker> worker_;
  std::thread thread_;
  Gate gate_;
  std::atomic<int> tag_calls_{0};
};

TEST_F(PauseTest, AHeldRequestWaitsThenGoesOnThroughTheRestOfTheChain) {
  const int held = connect_gw();
  get(held, "/hold/a");
  EXPECT_EQ(read_for(held, 300), "");  // paused: no answer, nothing forwarded
  EXPECT_TRUE(upstream_.seen().empty());
  EXPECT_EQ(tag_calls_.load(), 0);
  const int other = connect_gw();
  get(other, "/release");
  EXPECT_NE(read_for(other, 3000).find("\r\n\r\n/release|after-gate"), std::string::npos);
  const std::string r = read_for(held, 3000);
  EXPECT_EQ(r.substr(0, 15), "HTTP/1.1 200 OK") << r;
  EXPECT_NE(r.find("\r\n\r\n/hold/a|after-gate"), std::string::npos) << r;  // edits kept
  EXPECT_NE(r.find("\r\nX-Seen-Status: 200\r\n"), std::string::npos) << r;  // response phase
  EXPECT_EQ(tag_calls_.load(), 2);  // once per request: the chain went on after the gate
  // The resumed connection is an ordinary keep-alive connection again.
  get(held, "/next");
  EXPECT_NE(read_for(held, 3000).find("/next|after-gate"), std::string::npos);
  close(held);
  close(other);
}

TEST_F(PauseTest, ARefusedHeldRequestGetsTheFiltersReplyAndReachesNoUpstream) {
  const int held = connect_gw();
  get(held, "/hold/b");
  EXPECT_EQ(read_for(held, 200), "");
  const int other = connect_gw();
  get(other, "/reject");
  EXPECT_NE(read_for(other, 3000).find("200 OK"), std::string::npos);
  const std::string r = read_for(held, 3000);
  EXPECT_EQ(r.substr(0, 22), "HTTP/1.1 403 Forbidden") << r;
  EXPECT_NE(r.find("application/problem+json"), std::string::npos);
  EXPECT_NE(r.find("refused by the gate"), std::string::npos);
  EXPECT_EQ(r.find("X-Seen-Status"), std::string::npos);  // no upstream head, no response phase
  for (const std::string& t : upstream_.seen()) EXPECT_NE(t, "/hold/b");
  close(held);
  close(other);
}

TEST_F(PauseTest, AHeldRequestTimesOutAndALateResumeDoesNothing) {
  const int held = connect_gw();
  get(held, "/hold/c");
  const std::string r = read_for(held, 5000);
  EXPECT_EQ(r.substr(0, 24), "HTTP/1.1 504 Gateway Tim") << r;
  EXPECT_NE(r.find("a filter did not decide in time"), std::string::npos);
  const int other = connect_gw();
  get(other, "/release");  // resumes a slot whose exchange is over
  EXPECT_NE(read_for(other, 3000).find("/release|"), std::string::npos);
  for (const std::string& t : upstream_.seen()) EXPECT_NE(t, "/hold/c");
  close(held);
  close(other);
}

TEST_F(PauseTest, AClientGoneWhileHeldLeavesTheWorkerServing) {
  int held = connect_gw();
  get(held, "/hold/d");
  EXPECT_EQ(read_for(held, 100), "");
  close(held);
  const int other = connect_gw();
  get(other, "/release");
  EXPECT_NE(read_for(other, 3000).find("/release|"), std::string::npos);
  get(other, "/again");
  EXPECT_NE(read_for(other, 3000).find("/again|"), std::string::npos);
  close(other);
}

}  // namespace
}  // namespace ringway
