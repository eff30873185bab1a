// ServerContext and ClientContext: certificate selection, protocol policy, resumption across
// contexts, client certificates, upstream verification and reload.
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "ringway/config/config.h"

#include "link.h"
#include "ringway/tls/client_context.h"
#include "ringway/tls/kernel_tls.h"
#include "ringway/tls/server_context.h"
#include "ringway/tls/session.h"
#include "test_pki.h"

namespace ringway::tls {
namespace {

using test::Link;
using test::pki;
using Step = Session::Step;

std::shared_ptr<const ServerContext> build_server(ServerSettings s) {
  std::string err;
  auto ctx = ServerContext::build(s, err);
  EXPECT_NE(ctx, nullptr) << err;
  return ctx;
}

ServerSettings all_certs() {
  ServerSettings s;
  s.certs = {{pki().rsa_cert, pki().rsa_key},
             {pki().ec_cert, pki().ec_key},
             {pki().wild_cert, pki().wild_key},
             {pki().cn_cert, pki().cn_key}};
  return s;
}

std::unique_ptr<ClientContext> build_client(ClientSettings s = {}) {
  if (s.ca_file.empty() && s.verify) s.ca_file = pki().ca;
  std::string err;
  auto ctx = ClientContext::build(s, err);
  EXPECT_NE(ctx, nullptr) << err;
  return ctx;
}

struct Result {
  bool ok;
  Session::Info client;
  Session::Info server;
};

// One connection: handshake, one byte each way so that TLS 1.3 tickets reach the client, close.
Result connect(const ServerContext& sctx, ClientContext& cctx, const std::string& name,
               const std::string& cache_key = {}) {
  auto server = Session::server(sctx);
  auto client = Session::client(cctx, name, cache_key);
  Link link{*client, *server};
  Result r{link.handshake(), {}, {}};
  if (r.ok) {
    link.write_all(*server, "s");
    EXPECT_EQ(Link::read_all(*client, link.to_client), "s");
    link.write_all(*client, "c");
    EXPECT_EQ(Link::read_all(*server, link.to_server), "c");
  }
  r.client = client->info();
  r.server = server->info();
  // Info views point into the sessions; keep owned copies of what the tests compare.
  static thread_local std::string keep[4];
  keep[0] = std::string(r.client.failure);
  keep[1] = std::string(r.server.failure);
  keep[2] = std::string(r.server.version);
  keep[3] = std::string(r.server.sni);
  r.client.failure = keep[0];
  r.server.failure = keep[1];
  r.server.version = keep[2];
  r.server.sni = keep[3];
  r.client.alpn = r.server.alpn = r.client.cipher = r.server.cipher = r.client.version = {};
  r.client.sni = {};
  return r;
}

TEST(TlsServerContext, SniPicksTheCertificateWhoseNamesMatch) {
  auto sctx = build_server(all_certs());
  ASSERT_EQ(sctx->names().size(), 4u);
  EXPECT_EQ(sctx->names()[0], (std::vector<std::string>{"a.test", "www.a.test"}));
  EXPECT_EQ(sctx->names()[3], (std::vector<std::string>{"cn.test"}));  // CN only without SAN
  auto cctx = build_client();
  struct Case {
    const char* sni;
    const char* expect_cn;
  };
  for (const Case& c : {Case{"a.test", "CN=a.test"}, Case{"WWW.A.test", "CN=a.test"},
                        Case{"b.test", "CN=b.test"}, Case{"x.w.test", "CN=wildcard"},
                        Case{"cn.test", "CN=cn.test"}}) {
    Result r = connect(*sctx, *cctx, c.sni);
    ASSERT_TRUE(r.ok) << c.sni << ": " << r.client.failure << " / " << r.server.failure;
    EXPECT_NE(r.client.peer_subject.find(c.expect_cn), std::string::npos)
        << c.sni << " got " << r.client.peer_subject;
  }
  // The wildcard covers exactly one label; unknown names get the default certificate, which then
  // fails the client's name check.
  for (const char* sni : {"a.b.w.test", "w.test", "unknown.test"}) {
    Result r = connect(*sctx, *cctx, sni);
    EXPECT_FALSE(r.ok) << sni;
    EXPECT_EQ(r.client.failure, "hostname_mismatch") << sni;
  }
  // No SNI at all (an IP literal is never sent as SNI): the default certificate.
  ClientSettings no_verify;
  no_verify.verify = false;
  auto blind = build_client(no_verify);
  Result r = connect(*sctx, *blind, "127.0.0.1");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.server.sni, "");
}

TEST(TlsServerContext, RsaAndEcdsaForTheSameNamesShareOneContext) {
  ServerSettings s;
  s.certs = {{pki().rsa_cert, pki().rsa_key},  // default
             {pki().ec_cert, pki().ec_key},
             {pki().rsa_b_cert, pki().rsa_b_key}};  // same names as the ECDSA one
  auto sctx = build_server(s);
  // The client's signature algorithms pick the key type.
  for (const char* sigalgs : {"ECDSA+SHA256", "RSA-PSS+SHA256:RSA+SHA256"}) {
    auto cctx = build_client();
    ASSERT_EQ(SSL_CTX_set1_sigalgs_list(cctx->ssl_ctx(), sigalgs), 1);
    auto server = Session::server(*sctx);
    auto client = Session::client(*cctx, "b.test");
    Link link{*client, *server};
    ASSERT_TRUE(link.handshake()) << sigalgs << ": " << client->failure() << server->failure();
    EVP_PKEY* key = X509_get0_pubkey(SSL_get0_peer_certificate(client->native_handle()));
    EXPECT_EQ(EVP_PKEY_get_base_id(key), sigalgs[0] == 'E' ? EVP_PKEY_EC : EVP_PKEY_RSA) << sigalgs;
    EXPECT_NE(client->info().peer_subject.find("CN=b.test"), std::string::npos);
  }
  // Same names and the same key type: one of them could never be used.
  std::string err;
  s.certs.push_back({pki().expired_cert, pki().expired_key});  // ECDSA, a.test
  s.certs.push_back({pki().self_cert, pki().self_key});        // ECDSA, a.test again
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("same names and key type"), std::string::npos) << err;
}

TEST(TlsServerContext, OldProtocolsAndWeakCiphersAreRefused) {
  auto sctx = build_server(all_certs());
  auto cctx = build_client();
  // A TLS 1.1-only client (OpenSSL 3 needs security level 0 to even try).
  SSL_CTX* raw = cctx->ssl_ctx();
  SSL_CTX_set_security_level(raw, 0);
  SSL_CTX_set_min_proto_version(raw, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(raw, TLS1_1_VERSION);
  SSL_CTX_set_cipher_list(raw, "DEFAULT:@SECLEVEL=0");
  Result r = connect(*sctx, *cctx, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.server.failure, "protocol_version");

  // TLS 1.2 with only static-RSA/CBC ciphers.
  auto weak = build_client();
  SSL_CTX_set_max_proto_version(weak->ssl_ctx(), TLS1_2_VERSION);
  ASSERT_EQ(SSL_CTX_set_cipher_list(weak->ssl_ctx(), "AES128-SHA:AES256-SHA:AES128-GCM-SHA256"), 1);
  r = connect(*sctx, *weak, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.server.failure, "no_shared_cipher");

  // TLS 1.2 with a good cipher works; a 1.3-only server refuses it.
  auto tls12 = build_client();
  SSL_CTX_set_max_proto_version(tls12->ssl_ctx(), TLS1_2_VERSION);
  r = connect(*sctx, *tls12, "a.test");
  ASSERT_TRUE(r.ok) << r.server.failure;
  EXPECT_EQ(r.server.version, "TLSv1.2");
  ServerSettings only13 = all_certs();
  only13.min_version = Version::kTls13;
  auto s13 = build_server(only13);
  r = connect(*s13, *tls12, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.server.failure, "protocol_version");
}

TEST(TlsServerContext, CipherSettingsAreCheckedAtBuild) {
  std::string err;
  ServerSettings s = all_certs();
  s.ciphers = "AES128-SHA";
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("'AES128-SHA' is not allowed"), std::string::npos) << err;
  s.ciphers = "NOT-A-CIPHER";
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("invalid TLS 1.2 cipher list"), std::string::npos) << err;
  s.ciphers = "ECDHE-RSA-CHACHA20-POLY1305";
  s.ciphersuites = "TLS_NOPE";
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("invalid TLS 1.3 ciphersuites"), std::string::npos) << err;
  s.ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
  auto ctx = ServerContext::build(s, err);
  ASSERT_NE(ctx, nullptr) << err;
  auto cctx = build_client();
  auto server = Session::server(*ctx);
  auto client = Session::client(*cctx, "a.test");
  Link link{*client, *server};
  ASSERT_TRUE(link.handshake());
  EXPECT_EQ(server->info().cipher, "TLS_CHACHA20_POLY1305_SHA256");
}

TEST(TlsServerContext, BuildErrorsNameTheFile) {
  std::string err;
  ServerSettings s;
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("no TLS certificate"), std::string::npos);
  s.certs = {{"/nonexistent/c.pem", pki().rsa_key}};
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("'/nonexistent/c.pem'"), std::string::npos) << err;
  s.certs = {{pki().rsa_cert, pki().ec_key}};
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find(pki().ec_key), std::string::npos) << err;
  s.certs = {{pki().rsa_cert, pki().rsa_cert}};  // a certificate where the key should be
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("cannot load private key"), std::string::npos) << err;
  s.certs = {{pki().rsa_cert, pki().rsa_key}};
  s.client_auth = ClientAuth::kRequired;
  EXPECT_EQ(ServerContext::build(s, err), nullptr);
  EXPECT_NE(err.find("client CA"), std::string::npos) << err;
}

TEST(TlsServerContext, AlpnSelectsHttp11AndH2OnlyClientsProceedWithout) {
  auto sctx = build_server(all_certs());
  auto cctx = build_client();
  {
    auto server = Session::server(*sctx);
    auto client = Session::client(*cctx, "a.test");
    Link link{*client, *server};
    ASSERT_TRUE(link.handshake());
    EXPECT_EQ(server->info().alpn, "http/1.1");
  }
  {
    auto server = Session::server(*sctx);
    auto client = Session::client(*cctx, "a.test");
    static const unsigned char kH2[] = "\x02h2";
    SSL_set_alpn_protos(client->native_handle(), kH2, sizeof kH2 - 1);
    Link link{*client, *server};
    ASSERT_TRUE(link.handshake()) << server->failure();
    EXPECT_EQ(server->info().alpn, "");
    EXPECT_EQ(client->info().alpn, "");
  }
}

std::string write_ticket_file(const std::string& bytes) {
  std::string path = pki().dir + "/tickets_XXXXXX";
  const int fd = mkstemp(path.data());
  EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  return path;
}

TEST(TlsResumption, TicketsResumeAcrossContextsSharingTheKeyFile) {
  const std::string file_a = write_ticket_file(std::string(80, 'A') + std::string(80, 'B'));
  const std::string file_b = write_ticket_file(std::string(80, 'C'));
  for (Version max : {Version::kTls13, Version::kTls12}) {
    SCOPED_TRACE(max == Version::kTls13 ? "TLS 1.3" : "TLS 1.2");
    ServerSettings s = all_certs();
    s.ticket_key_file = file_a;
    auto one = build_server(s);
    auto two = build_server(s);  // another worker or another gateway with the same file
    s.ticket_key_file = file_b;
    auto other = build_server(s);
    auto cctx = build_client();
    if (max == Version::kTls12) SSL_CTX_set_max_proto_version(cctx->ssl_ctx(), TLS1_2_VERSION);
    Result r = connect(*one, *cctx, "a.test", "a.test:443");
    ASSERT_TRUE(r.ok);
    EXPECT_FALSE(r.server.resumed);
    EXPECT_EQ(cctx->cached(), 1u);
    // Every resumed connection brings a fresh ticket, so the next one resumes again.
    for (int i = 0; i < 3; ++i) {
      r = connect(i % 2 ? *one : *two, *cctx, "a.test", "a.test:443");
      ASSERT_TRUE(r.ok);
      EXPECT_TRUE(r.server.resumed) << i;
      EXPECT_TRUE(r.client.resumed) << i;
    }
    r = connect(*other, *cctx, "a.test", "a.test:443");  // different keys: full handshake
    ASSERT_TRUE(r.ok);
    EXPECT_FALSE(r.server.resumed);
    r = connect(*other, *cctx, "a.test", "a.test:443");
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.server.resumed);
    // No cache key: never resumed.
    r = connect(*other, *cctx, "a.test");
    EXPECT_FALSE(r.server.resumed);
  }
}

TEST(TlsResumption, ClientKeepsATls12SessionResumedWithoutANewTicket) {
  // Many TLS 1.2 servers resume without issuing a new ticket; OpenSSL then reports no new
  // session, and the client must keep the one it used. Stand-in: our server context with
  // OpenSSL's built-in ticket keys, which renew nothing.
  auto sctx = build_server(all_certs());
  SSL_CTX_set_tlsext_ticket_key_evp_cb(sctx->ssl_ctx(), nullptr);
  auto cctx = build_client();
  SSL_CTX_set_max_proto_version(cctx->ssl_ctx(), TLS1_2_VERSION);
  EXPECT_FALSE(connect(*sctx, *cctx, "a.test", "k").server.resumed);
  for (int i = 0; i < 3; ++i) {
    Result r = connect(*sctx, *cctx, "a.test", "k");
    EXPECT_TRUE(r.server.resumed) << i;
    EXPECT_EQ(cctx->cached(), 1u);
  }
}

TEST(TlsResumption, RandomKeysRotateAndOldTicketsStillDecrypt) {
  auto sctx = build_server(all_certs());
  ASSERT_FALSE(sctx->ticket_keys()->from_file());
  auto cctx = build_client();
  ASSERT_TRUE(connect(*sctx, *cctx, "a.test", "k").ok);
  const TicketKeySet* before = sctx->ticket_keys()->current();
  ASSERT_TRUE(sctx->ticket_keys()->rotate());
  ASSERT_NE(sctx->ticket_keys()->current(), before);
  EXPECT_EQ(sctx->ticket_keys()->current()->keys.size(), 2u);
  Result r = connect(*sctx, *cctx, "a.test", "k");  // ticket under the previous key
  EXPECT_TRUE(r.server.resumed);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(sctx->ticket_keys()->rotate());
  EXPECT_EQ(sctx->ticket_keys()->current()->keys.size(), 3u);  // current + 2 previous
  r = connect(*sctx, *cctx, "a.test", "k");  // its key has been dropped
  EXPECT_FALSE(r.server.resumed);

  // A reload keeps the random keys, so tickets issued before it still resume.
  ASSERT_TRUE(connect(*sctx, *cctx, "a.test", "k").ok);  // a fresh ticket under the current key
  std::string err;
  auto reloaded = ServerContext::reload(*sctx, all_certs(), err);
  ASSERT_NE(reloaded, nullptr) << err;
  EXPECT_EQ(reloaded->ticket_keys(), sctx->ticket_keys());
  EXPECT_TRUE(connect(*reloaded, *cctx, "a.test", "k").server.resumed);
}

TEST(TlsTicketKeys, FileFormatIsCheckedWithoutEchoingKeys) {
  std::string err;
  const std::string bad = write_ticket_file(std::string(79, 'S'));
  EXPECT_EQ(TicketKeys::from_file(bad, err), nullptr);
  EXPECT_NE(err.find("80 bytes"), std::string::npos) << err;
  EXPECT_EQ(err.find("SSS"), std::string::npos) << err;
  EXPECT_EQ(TicketKeys::from_file("/nonexistent/keys", err), nullptr);
  EXPECT_NE(err.find("/nonexistent/keys"), std::string::npos);
  const std::string good = write_ticket_file(std::string(160, 'K'));
  auto keys = TicketKeys::from_file(good, err);
  ASSERT_NE(keys, nullptr) << err;
  EXPECT_EQ(keys->current()->keys.size(), 2u);
  EXPECT_FALSE(keys->rotate());  // the file's owner rotates
}

TEST(TlsClientAuth, RequiredRefusesNoCertAndExposesTheVerifiedSubject) {
  ServerSettings s = all_certs();
  s.client_ca_file = pki().ca;
  s.client_auth = ClientAuth::kRequired;
  auto sctx = build_server(s);
  auto anonymous = build_client();
  Result r = connect(*sctx, *anonymous, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.server.failure, "no_client_certificate");

  ClientSettings with_cert;
  with_cert.cert_file = pki().client_cert;
  with_cert.key_file = pki().client_key;
  auto client = build_client(with_cert);
  r = connect(*sctx, *client, "a.test");
  ASSERT_TRUE(r.ok) << r.server.failure;
  EXPECT_EQ(r.server.peer_subject, "CN=client-one,O=ringway tests");

  ClientSettings intruder;
  intruder.cert_file = pki().other_client_cert;
  intruder.key_file = pki().other_client_key;
  auto bad = build_client(intruder);
  r = connect(*sctx, *bad, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.server.failure, "unknown_ca");

  s.client_auth = ClientAuth::kOptional;
  auto optional = build_server(s);
  r = connect(*optional, *anonymous, "a.test");
  ASSERT_TRUE(r.ok) << r.server.failure;
  EXPECT_EQ(r.server.peer_subject, "");
  r = connect(*optional, *client, "a.test");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.server.peer_subject, "CN=client-one,O=ringway tests");
}

TEST(TlsClientContext, RefusesUntrustedWrongNameAndExpiredWithTheReason) {
  ServerSettings self;
  self.certs = {{pki().self_cert, pki().self_key}};
  ServerSettings expired;
  expired.certs = {{pki().expired_cert, pki().expired_key}};
  auto self_ctx = build_server(self);
  auto expired_ctx = build_server(expired);
  auto good_ctx = build_server(all_certs());

  std::string err;
  auto system = ClientContext::build(ClientSettings{}, err);  // the system bundle
  ASSERT_NE(system, nullptr) << err;
  Result r = connect(*self_ctx, *system, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.client.failure, "unknown_ca");
  r = connect(*good_ctx, *system, "a.test");  // our test CA is not in the system bundle
  EXPECT_EQ(r.client.failure, "unknown_ca");

  auto ours = build_client();
  r = connect(*good_ctx, *ours, "wrong.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.client.failure, "hostname_mismatch");
  r = connect(*good_ctx, *ours, "127.0.0.1");  // an address must be in the certificate too
  EXPECT_EQ(r.client.failure, "hostname_mismatch");
  r = connect(*expired_ctx, *ours, "a.test");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.client.failure, "expired");
  EXPECT_EQ(connect(*self_ctx, *ours, "a.test").client.failure, "unknown_ca");

  // The CA file replaces the bundle; an unrelated CA trusts nothing here.
  ClientSettings other;
  other.ca_file = pki().other_ca;
  auto other_ctx = build_client(other);
  EXPECT_EQ(connect(*good_ctx, *other_ctx, "a.test").client.failure, "unknown_ca");

  // verify=false: explicit, and then anything goes.
  ClientSettings blind;
  blind.verify = false;
  auto blind_ctx = build_client(blind);
  EXPECT_TRUE(connect(*self_ctx, *blind_ctx, "a.test").ok);
  EXPECT_TRUE(connect(*expired_ctx, *blind_ctx, "wrong.test").ok);

  EXPECT_EQ(Session::client(*ours, ""), nullptr);  // no name to check: refused up front
  EXPECT_NE(Session::client(*blind_ctx, ""), nullptr);

  ClientSettings missing;
  missing.ca_file = "/nonexistent/ca.pem";
  EXPECT_EQ(ClientContext::build(missing, err), nullptr);
  EXPECT_NE(err.find("/nonexistent/ca.pem"), std::string::npos) << err;
}

TEST(TlsServerContext, ReloadFailureKeepsTheOldContextWorking) {
  const std::string cert = pki().dir + "/reload.pem";
  const std::string key = pki().dir + "/reload.key";
  auto copy = [](const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  };
  copy(pki().rsa_cert, cert);
  copy(pki().rsa_key, key);
  ServerSettings s;
  s.certs = {{cert, key}};
  auto current = build_server(s);
  auto cctx = build_client();
  // A connection begun on the old context, finished after the context object is gone.
  auto server = Session::server(*current);
  auto client = Session::client(*cctx, "a.test");

  copy(pki().ec_key, key);  // now the key does not match
  std::string err;
  EXPECT_EQ(ServerContext::reload(*current, s, err), nullptr);
  EXPECT_NE(err.find("does not match"), std::string::npos) << err;
  EXPECT_TRUE(connect(*current, *cctx, "a.test").ok);  // the old one still serves

  copy(pki().ec_cert, cert);
  copy(pki().ec_key, key);
  auto next = ServerContext::reload(*current, s, err);
  ASSERT_NE(next, nullptr) << err;
  current = next;  // the caller swaps; the old ServerContext is destroyed here
  Result r = connect(*current, *cctx, "b.test");
  ASSERT_TRUE(r.ok);
  EXPECT_NE(r.client.peer_subject.find("CN=b.test"), std::string::npos);
  Link link{*client, *server};
  EXPECT_TRUE(link.handshake());  // the old SSL_CTX lived on through its SSL
}

TEST(TlsServerContext, SettingsFromTheConfigRows) {
  config::Config cfg;
  cfg.tls_certs = {{pki().rsa_cert, pki().rsa_key}, {pki().ec_cert, pki().ec_key}};
  cfg.tls_min_version = "1.3";
  cfg.tls_ciphers = "ECDHE-RSA-AES256-GCM-SHA384";
  cfg.tls_ciphersuites = "TLS_AES_256_GCM_SHA384";
  cfg.tls_client_ca = pki().ca;
  cfg.tls_client_auth = "optional";
  cfg.tls_ticket_key_file = "/some/keys";
  const ServerSettings s = server_settings(cfg);
  ASSERT_EQ(s.certs.size(), 2u);
  EXPECT_EQ(s.certs[1].cert, pki().ec_cert);
  EXPECT_EQ(s.certs[1].key, pki().ec_key);
  EXPECT_EQ(s.min_version, Version::kTls13);
  EXPECT_EQ(s.ciphers, "ECDHE-RSA-AES256-GCM-SHA384");
  EXPECT_EQ(s.ciphersuites, "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(s.client_ca_file, pki().ca);
  EXPECT_EQ(s.client_auth, ClientAuth::kOptional);
  EXPECT_EQ(s.ticket_key_file, "/some/keys");
  cfg.tls_client_auth = "required";
  cfg.tls_min_version = "1.2";
  EXPECT_EQ(server_settings(cfg).client_auth, ClientAuth::kRequired);
  EXPECT_EQ(server_settings(cfg).min_version, Version::kTls12);
  EXPECT_EQ(server_settings(config::Config{}).client_auth, ClientAuth::kNone);

  cfg.upstream_ca = pki().ca;
  const ClientSettings c = client_settings(cfg);
  EXPECT_EQ(c.ca_file, pki().ca);
  EXPECT_TRUE(c.verify);
  EXPECT_EQ(client_settings(config::Config{}).ca_file, "");  // the system bundle
}

TEST(TlsServerContext, SharedByThreadsWhileTicketKeysRotate) {
  // One context, as the workers share it; each thread has its own client context (per worker).
  // Fewer rotations than TicketKeys::kRetiredKept: nothing is freed while the threads run.
  auto sctx = build_server(all_certs());
  std::atomic<int> ok{0}, resumed{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto cctx = build_client();
      for (int i = 0; i < 40; ++i) {
        Result r = connect(*sctx, *cctx, t % 2 ? "a.test" : "b.test", "k");
        ok += r.ok;
        resumed += r.server.resumed;
      }
    });
  }
  std::thread rotator([&] {
    for (size_t i = 0; i + 1 < TicketKeys::kRetiredKept && !stop; ++i) {
      sctx->ticket_keys()->rotate();
      std::this_thread::yield();
    }
  });
  for (std::thread& t : threads) t.join();
  stop = true;
  rotator.join();
  EXPECT_EQ(ok.load(), 120);
  EXPECT_GT(resumed.load(), 100);  // all but the first of each thread, less any after a drop
}

TEST(TlsKernel, ProbeAgreesWithTheKernelsListOfUlps) {
  // This machine's kernel has no TLS ULP (ARCHITECTURE.md); elsewhere it may. After the probe
  // (which may have auto-loaded the module) the kernel lists "tls" exactly when it has it.
  const bool available = kernel_tls_available();
  RecordProperty("kernel_tls", available ? "yes" : "no");
  std::ifstream in("/proc/sys/net/ipv4/tcp_available_ulp");
  if (!in) GTEST_SKIP() << "no /proc/sys/net/ipv4/tcp_available_ulp";
  std::string word;
  bool listed = false;
  while (in >> word) listed |= word == "tls";
  EXPECT_EQ(available, listed);
}

}  // namespace
}  // namespace ringway::tls
