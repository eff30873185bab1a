// Session: a client and a server talking in memory through the custom BIO.
#include "ringway/tls/session.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <string>

#include "link.h"
#include "ringway/tls/client_context.h"
#include "ringway/tls/server_context.h"
#include "test_pki.h"

namespace ringway::tls {
namespace {

using test::Link;
using test::pki;

std::shared_ptr<const ServerContext> server_ctx(ServerSettings s = {}) {
  if (s.certs.empty()) s.certs = {{pki().rsa_cert, pki().rsa_key}};
  std::string err;
  auto ctx = ServerContext::build(s, err);
  EXPECT_NE(ctx, nullptr) << err;
  return ctx;
}

std::unique_ptr<ClientContext> client_ctx(ClientSettings s = {}) {
  if (s.ca_file.empty()) s.ca_file = pki().ca;
  std::string err;
  auto ctx = ClientContext::build(s, err);
  EXPECT_NE(ctx, nullptr) << err;
  return ctx;
}

std::string sha256(const std::string& data) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

TEST(TlsSession, HandshakeDataBothWaysAndCloseNotify) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto server = Session::server(*sctx);
  auto client = Session::client(*cctx, "a.test");
  Link link{*client, *server};
  ASSERT_TRUE(link.handshake()) << client->failure() << " / " << server->failure();
  const Session::Info si = server->info();
  EXPECT_EQ(si.version, "TLSv1.3");
  EXPECT_EQ(si.sni, "a.test");
  EXPECT_EQ(si.alpn, "http/1.1");
  EXPECT_FALSE(si.resumed);
  EXPECT_EQ(si.peer_subject, "");
  EXPECT_FALSE(si.cipher.empty());
  const Session::Info ci = client->info();
  EXPECT_EQ(ci.alpn, "http/1.1");
  EXPECT_NE(ci.peer_subject.find("CN=a.test"), std::string::npos) << ci.peer_subject;

  // Small request, then 1 MiB each way, hashed.
  link.write_all(*client, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  EXPECT_EQ(Link::read_all(*server, link.to_server), "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  std::string big(1 << 20, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(big.data()), static_cast<int>(big.size()));
  for (Session* from : {client.get(), server.get()}) {
    Session* to = from == client.get() ? server.get() : client.get();
    std::string& wire = from == client.get() ? link.to_server : link.to_client;
    std::string got;
    size_t off = 0;
    while (off < big.size()) {
      Session::Step step;
      off += from->write(big.data() + off, big.size() - off, step);
      // Output never grows without bound: write() stops and asks for a send.
      EXPECT_LE(from->output().size(), Session::kMaxPendingOutput + 17 * 1024);
      link.pump();
      got += Link::read_all(*to, wire);
    }
    EXPECT_EQ(got.size(), big.size());
    EXPECT_EQ(sha256(got), sha256(big));
  }

  // close_notify from the client: the server sees kClosed, not an error.
  client->close_notify();
  link.pump();
  Session::Step last;
  EXPECT_EQ(Link::read_all(*server, link.to_server, &last), "");
  EXPECT_EQ(last, Session::Step::kClosed);
  EXPECT_TRUE(server->peer_closed());
  EXPECT_EQ(server->failure(), "");
  Session::Step step;
  EXPECT_EQ(client->write("x", 1, step), 0u);  // nothing after our close_notify
}

TEST(TlsSession, ByteByByteClientHelloStillCompletes) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto server = Session::server(*sctx);
  auto client = Session::client(*cctx, "a.test");
  Link link{*client, *server};
  Input none{};
  ASSERT_EQ(client->handshake(none), Session::Step::kWantRead);
  link.pump();
  const std::string hello = link.to_server;
  link.to_server.clear();
  ASSERT_GT(hello.size(), 100u);
  for (size_t i = 0; i < hello.size(); ++i) {
    Input in{hello.data() + i, 1};
    const Session::Step s = server->handshake(in);
    EXPECT_EQ(in.used, 1u);  // OpenSSL keeps partial records itself
    ASSERT_EQ(s, Session::Step::kWantRead) << i;
    if (i + 1 < hello.size()) {
      ASSERT_TRUE(server->output().empty()) << i;  // nothing answered before the whole hello
    }
  }
  ASSERT_FALSE(server->output().empty());
  ASSERT_TRUE(link.handshake());
  link.write_all(*server, "pong");
  EXPECT_EQ(Link::read_all(*client, link.to_client), "pong");
}

TEST(TlsSession, UnusedInputStaysWithTheCaller) {
  // The client's Finished and its first request arrive together: handshake() takes the records
  // it needs and leaves the application record for read().
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto server = Session::server(*sctx);
  auto client = Session::client(*cctx, "a.test");
  Link link{*client, *server};
  Input none{};
  client->handshake(none);
  link.pump();
  Link::drive(*server, link.to_server);
  link.pump();
  ASSERT_EQ(Link::drive(*client, link.to_client), Session::Step::kOk);
  Session::Step step;
  ASSERT_EQ(client->write("hello", 5, step), 5u);
  link.pump();
  Input in{link.to_server.data(), link.to_server.size()};
  ASSERT_EQ(server->handshake(in), Session::Step::kOk);
  ASSERT_LT(in.used, in.size);  // the application record is left over
  char buf[16];
  Input rest{in.data + in.used, in.size - in.used};
  EXPECT_EQ(server->read(rest, buf, sizeof buf, step), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  EXPECT_EQ(rest.used, rest.size);
}

TEST(TlsSession, GarbageInsteadOfClientHelloIsAnErrorWithAReason) {
  auto sctx = server_ctx();
  {
    auto server = Session::server(*sctx);
    std::string http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    Input in{http.data(), http.size()};
    EXPECT_EQ(server->handshake(in), Session::Step::kError);
    EXPECT_EQ(server->failure(), "http_request");
    EXPECT_EQ(server->info().failure, "http_request");
    // Once failed, always failed.
    Input again{http.data(), http.size()};
    EXPECT_EQ(server->handshake(again), Session::Step::kError);
  }
  {
    auto server = Session::server(*sctx);
    std::string junk(300, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 131 + 7);
    Input in{junk.data(), junk.size()};
    EXPECT_EQ(server->handshake(in), Session::Step::kError);
    EXPECT_FALSE(server->failure().empty());
  }
  {
    // A record header announcing a handshake record that is too long.
    auto server = Session::server(*sctx);
    const std::string bad("\x16\x03\x01\xff\xff", 5);
    Input in{bad.data(), bad.size()};
    EXPECT_EQ(server->handshake(in), Session::Step::kError);
    EXPECT_EQ(server->failure(), "bad_record");
  }
}

TEST(TlsSession, ReleaseBuffersWhenIdleThenKeepGoing) {
  auto sctx = server_ctx();
  auto cctx = client_ctx();
  auto server = Session::server(*sctx);
  auto client = Session::client(*cctx, "a.test");
  Link link{*client, *server};
  ASSERT_TRUE(link.handshake());
  link.write_all(*client, "one");
  EXPECT_EQ(Link::read_all(*server, link.to_server), "one");
  Link::read_all(*client, link.to_client);  // tickets
  server->release_buffers();
  client->release_buffers();
  EXPECT_TRUE(server->output().empty());
  link.write_all(*client, "two");
  EXPECT_EQ(Link::read_all(*server, link.to_server), "two");
  link.write_all(*server, "three");
  EXPECT_EQ(Link::read_all(*client, link.to_client), "three");
}

}  // namespace
}  // namespace ringway::tls
