// libFuzzer target for the server side of the TLS transport (tls::Session over its own BIO).
// The first input byte picks how the rest arrives:
//   bit 7 set: after a real ClientHello (made once by a client Session), so the bytes reach the
//              states past ServerHello (the client's second flight, alerts, records);
//   bits 0-6:  chunk size the bytes are fed in (0 = all at once), to exercise partial records.
// Invariants checked besides ASan/UBSan: a call never reports more consumed than offered, and a
// session that wants to read never leaves offered bytes unread (that would stall a connection).
// Certificates are made at start by tests/unit/tls/test_pki.cc (no key is committed).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "../unit/tls/test_pki.h"
#include "ringway/tls/client_context.h"
#include "ringway/tls/server_context.h"
#include "ringway/tls/session.h"

namespace rt = ringway::tls;

namespace {

struct Env {
  std::shared_ptr<const rt::ServerContext> server;
  std::string client_hello;
  Env() {
    const auto& p = rt::test::pki();
    rt::ServerSettings s;
    s.certs = {{p.rsa_cert, p.rsa_key}, {p.ec_cert, p.ec_key}};
    s.client_ca_file = p.ca;
    s.client_auth = rt::ClientAuth::kOptional;
    std::string err;
    server = rt::ServerContext::build(s, err);
    if (server == nullptr) __builtin_trap();
    rt::ClientSettings cs;
    cs.ca_file = p.ca;
    auto cctx = rt::ClientContext::build(cs, err);
    auto client = rt::Session::client(*cctx, "a.test");
    rt::Input none{};
    client->handshake(none);
    const auto out = client->output();
    client_hello.assign(out.data(), out.size());
  }
};

void check(const rt::Input& in, rt::Session::Step step) {
  if (in.used > in.size) __builtin_trap();
  if (step == rt::Session::Step::kWantRead && in.used < in.size) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Env env;
  if (size == 0) return 0;
  const bool after_hello = (data[0] & 0x80) != 0;
  const size_t chunk = data[0] & 0x7f;
  std::string bytes = after_hello ? env.client_hello : std::string();
  bytes.append(reinterpret_cast<const char*>(data + 1), size - 1);

  auto session = rt::Session::server(*env.server);
  size_t off = 0;
  std::string pending;  // offered but not consumed (a stalled read keeps it here)
  char plain[4096];
  while (off < bytes.size() || !pending.empty()) {
    const size_t n = chunk == 0 ? bytes.size() - off : std::min(chunk, bytes.size() - off);
    pending.append(bytes, off, n);
    off += n;
    rt::Input in{pending.data(), pending.size()};
    rt::Session::Step step;
    if (!session->established()) {
      step = session->handshake(in);
      check(in, step);
    } else {
      step = rt::Session::Step::kOk;
    }
    if (session->established() && step == rt::Session::Step::kOk) {
      rt::Input rest{in.data + in.used, in.size - in.used};
      while (session->read(rest, plain, sizeof plain, step) > 0) {
        rt::Session::Step ws;
        session->write(plain, 1, ws);
      }
      check(rest, step);
      in.used += rest.used;
    }
    pending.erase(0, in.used);
    session->output_sent(session->output().size());
    if (step == rt::Session::Step::kError || step == rt::Session::Step::kClosed) break;
    if (n == 0 && in.used == 0) break;  // nothing new and nothing taken
  }
  session->close_notify();
  (void)session->info();
  session->release_buffers();
  return 0;
}
