// A real TLS client: `openssl s_client` over loopback TCP against a server Session that this test
// drives with a plain poll loop (the engine's job later): bytes from the socket go to
// handshake()/read(), output() goes to the socket. Bounded by a deadline; no timing assertions.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "ringway/tls/server_context.h"
#include "ringway/tls/session.h"
#include "test_pki.h"

namespace ringway::tls {
namespace {

using test::pki;
using Step = Session::Step;

struct Child {
  pid_t pid = -1;
  int stdin_fd = -1;
  int stdout_fd = -1;
  ~Child() {
    if (stdin_fd >= 0) close(stdin_fd);
    if (stdout_fd >= 0) close(stdout_fd);
    if (pid > 0) {
      kill(pid, SIGTERM);
      waitpid(pid, nullptr, 0);
    }
  }
};

bool spawn(Child& c, const std::vector<std::string>& args) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return false;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    std::vector<char*> argv;
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  c.stdin_fd = in[1];
  c.stdout_fd = out[0];
  return c.pid > 0;
}

// Serves one connection on lfd: handshake, then echoes each line back as "echo: LINE". Returns the
// server's Info once the client's text (containing `until`) has been echoed.
struct Served {
  bool established = false;
  std::string version, alpn, sni, failure;
  std::string client_output;
};

void serve(int lfd, const ServerContext& ctx, Child& child, const std::string& send,
           const std::string& until, Served& out) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  int fd = -1;
  auto session = Session::server(ctx);
  std::string inbuf;  // received ciphertext not yet consumed
  bool sent_line = false;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p[2] = {{fd >= 0 ? fd : lfd, POLLIN, 0}, {child.stdout_fd, POLLIN, 0}};
    if (poll(p, 2, 200) < 0) break;
    if (p[1].revents & (POLLIN | POLLHUP)) {
      char buf[4096];
      const ssize_t n = read(child.stdout_fd, buf, sizeof buf);
      if (n > 0) out.client_output.append(buf, static_cast<size_t>(n));
      if (out.client_output.find(until) != std::string::npos) break;
      if (n <= 0) break;
    }
    if (fd < 0) {
      if (p[0].revents & POLLIN) fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      continue;
    }
    if (!(p[0].revents & (POLLIN | POLLHUP))) continue;
    char buf[16384];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    inbuf.append(buf, static_cast<size_t>(n));
    Input in{inbuf.data(), inbuf.size()};
    Step step = Step::kOk;
    if (!session->established()) step = session->handshake(in);
    if (session->established() && step == Step::kOk) {
      char plain[16384];
      ssize_t got;
      while ((got = session->read(in, plain, sizeof plain, step)) > 0) {
        std::string reply = "echo: " + std::string(plain, static_cast<size_t>(got));
        Step ws;
        session->write(reply.data(), reply.size(), ws);
      }
    }
    inbuf.erase(0, in.used);
    const auto o = session->output();
    if (!o.empty()) {
      EXPECT_EQ(::send(fd, o.data(), o.size(), MSG_NOSIGNAL), static_cast<ssize_t>(o.size()));
      session->output_sent(o.size());
    }
    if (step == Step::kError || step == Step::kClosed) break;
    if (session->established() && !sent_line) {
      sent_line = true;
      EXPECT_EQ(write(child.stdin_fd, send.data(), send.size()), static_cast<ssize_t>(send.size()));
    }
  }
  const Session::Info i = session->info();
  out.established = session->established();
  out.version = i.version;
  out.alpn = i.alpn;
  out.sni = i.sni;
  out.failure = i.failure;
  if (fd >= 0) close(fd);
}

int listen_loopback(uint16_t& port) {
  const int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  EXPECT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(listen(lfd, 4), 0);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  return lfd;
}

TEST(TlsRealClient, OpensslSClientHandshakesAndGetsAnEcho) {
  ServerSettings s;
  s.certs = {{pki().rsa_cert, pki().rsa_key}, {pki().ec_cert, pki().ec_key}};
  std::string err;
  auto ctx = ServerContext::build(s, err);
  ASSERT_NE(ctx, nullptr) << err;
  for (const char* version : {"-tls1_3", "-tls1_2"}) {
    SCOPED_TRACE(version);
    uint16_t port = 0;
    const int lfd = listen_loopback(port);
    Child child;
    ASSERT_TRUE(spawn(child, {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                              "-servername", "b.test", "-verify_hostname", "b.test", "-CAfile",
                              pki().ca, "-verify_return_error", "-alpn", "http/1.1", version,
                              "-quiet"}));
    Served out;
    serve(lfd, *ctx, child, "hello over tls\n", "echo: hello over tls", out);
    close(lfd);
    EXPECT_TRUE(out.established) << out.failure << "\n" << out.client_output;
    EXPECT_NE(out.client_output.find("echo: hello over tls"), std::string::npos) << out.client_output;
    EXPECT_EQ(out.sni, "b.test");
    EXPECT_EQ(out.alpn, "http/1.1");
    EXPECT_EQ(out.version, std::string(version) == "-tls1_3" ? "TLSv1.3" : "TLSv1.2");
  }
}

TEST(TlsRealClient, OpensslSClientWithTls11IsRefused) {
  ServerSettings s;
  s.certs = {{pki().rsa_cert, pki().rsa_key}};
  std::string err;
  auto ctx = ServerContext::build(s, err);
  ASSERT_NE(ctx, nullptr) << err;
  uint16_t port = 0;
  const int lfd = listen_loopback(port);
  Child child;
  ASSERT_TRUE(spawn(child, {"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port),
                            "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0", "-quiet"}));
  Served out;
  serve(lfd, *ctx, child, "x\n", "never", out);
  close(lfd);
  EXPECT_FALSE(out.established);
  EXPECT_EQ(out.failure, "protocol_version");
}

}  // namespace
}  // namespace ringway::tls
