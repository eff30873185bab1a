// The session drives OpenSSL over a BIO of our own instead of a pair of memory BIOs: received
// ciphertext is read straight from the caller's receive buffer (BIO_s_mem would first copy it
// into its own buffer, a second copy of every byte on a path where, measured here, a plain copy
// relay already costs ~360 us/MiB against AES-GCM's ~170), and sealed records land in one buffer
// the caller sends from. OpenSSL's own record buffers remain: it decrypts in place in them.
#include "ringway/tls/session.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <string.h>

#include <algorithm>

#include "common.h"
#include "ringway/tls/client_context.h"
#include "ringway/tls/server_context.h"

namespace ringway::tls {
namespace {

Session* session_of(BIO* b) { return static_cast<Session*>(BIO_get_data(b)); }

int bio_read_ex(BIO* b, char* dst, size_t n, size_t* done) {
  BIO_clear_retry_flags(b);
  const int got = session_of(b)->bio_read(dst, n);
  if (got <= 0) {
    BIO_set_retry_read(b);  // not EOF: the caller simply has nothing more for now
    *done = 0;
    return 0;
  }
  *done = static_cast<size_t>(got);
  return 1;
}

int bio_write_ex(BIO* b, const char* src, size_t n, size_t* done) {
  BIO_clear_retry_flags(b);
  session_of(b)->bio_write(src, n);
  *done = n;
  return 1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_FLUSH:  // OpenSSL flushes after each flight; our buffer is the flush target
    case BIO_CTRL_DUP:
      return 1;
    default:
      return 0;
  }
}

int bio_create(BIO* b) {
  BIO_set_init(b, 1);
  return 1;
}

int bio_destroy(BIO* b) {
  BIO_set_data(b, nullptr);
  return 1;
}

BIO_METHOD* bio_method() {
  // Built once, on first use; read-only afterwards and shared by every thread.
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ringway session");
    BIO_meth_set_read_ex(m, bio_read_ex);
    BIO_meth_set_write_ex(m, bio_write_ex);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

bool is_ip_literal(const std::string& s) {
  unsigned char buf[sizeof(in6_addr)];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

std::unique_ptr<Session> Session::server(const ServerContext& ctx) {
  std::unique_ptr<Session> s(new Session());
  if (!s->init(ctx.ssl_ctx(), true)) return nullptr;
  return s;
}

void Session::set_client_auth(ClientAuth a) { SSL_set_verify(ssl_, detail::verify_mode(a), nullptr); }

std::unique_ptr<Session> Session::client(ClientContext& ctx, std::string_view server_name,
                                         std::string cache_key) {
  // Verifying a chain without checking that it names the server proves nothing (RFC 9110 4.3.4).
  if (ctx.verify() && server_name.empty()) return nullptr;
  std::unique_ptr<Session> s(new Session());
  if (!s->init(ctx.ssl_ctx(), false)) return nullptr;
  s->client_ = &ctx;
  s->cache_key_ = std::move(cache_key);
  const std::string name(server_name);
  const bool ip = is_ip_literal(name);
  // RFC 6066 3: SNI carries host names only, never address literals.
  if (!ip && !name.empty() && SSL_set_tlsext_host_name(s->ssl_, name.c_str()) != 1) return nullptr;
  if (ctx.verify()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                      : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    if (ok != 1) return nullptr;
  }
  static const unsigned char kAlpn[] = "\x08http/1.1";
  SSL_set_alpn_protos(s->ssl_, kAlpn, sizeof kAlpn - 1);
  if (!s->cache_key_.empty()) {
    if (SSL_SESSION* cached = ctx.take(s->cache_key_)) {
      SSL_set_session(s->ssl_, cached);
      SSL_SESSION_free(cached);
    }
  }
  ERR_clear_error();
  return s;
}

bool Session::init(SSL_CTX* ctx, bool is_server) {
  ssl_ = SSL_new(ctx);
  if (ssl_ == nullptr) return false;
  BIO* bio = BIO_new(bio_method());
  if (bio == nullptr) return false;
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways: SSL_set_bio takes a single reference
  SSL_set_app_data(ssl_, this);
  if (is_server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
  return true;
}

Session::~Session() {
  if (ssl_ != nullptr) {
    // Without this, SSL_free marks the session non-resumable whenever no close_notify was
    // exchanged (an idle pooled connection the peer closed). RFC 5246 7.2.1 and RFC 8446 6.1 no
    // longer tie resumability to a clean closure.
    SSL_set_shutdown(ssl_, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl_);
  }
}

int Session::bio_read(char* dst, size_t n) {
  if (in_ == nullptr || in_->used >= in_->size) return 0;
  const size_t take = std::min(n, in_->size - in_->used);
  memcpy(dst, in_->data + in_->used, take);
  const_cast<Input*>(in_)->used += take;
  return static_cast<int>(take);
}

void Session::bio_write(const char* src, size_t n) {
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  } else if (out_off_ >= kMaxPendingOutput) {
    out_.erase_front(out_off_);
    out_off_ = 0;
  }
  if (out_.capacity() == 0) out_.reserve(kMaxRecordPlaintext + 512);
  out_.append(src, n);
}

core::SkewedBytes Session::take_output() {
  if (out_off_ > 0) {
    out_.erase_front(out_off_);
    out_off_ = 0;
  }
  core::SkewedBytes taken;
  taken.swap(out_);
  out_.swap(spare_);
  out_.clear();
  return taken;
}

void Session::recycle_output(core::SkewedBytes&& buf) {
  buf.clear();
  if (buf.capacity() > spare_.capacity()) spare_ = std::move(buf);
}

void Session::output_sent(size_t n) {
  out_off_ += std::min(n, out_.size() - out_off_);
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
  }
}

Session::Step Session::fail(int ssl_error) {
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    peer_closed_ = true;
    ERR_clear_error();
    return Step::kClosed;
  }
  if (failure_.empty()) failure_ = detail::failure_reason(ssl_, ERR_peek_error());
  ERR_clear_error();
  return Step::kError;
}

Session::Step Session::handshake(Input& in) {
  if (established_) return Step::kOk;
  if (!failure_.empty()) return Step::kError;
  ERR_clear_error();  // another session's leftovers on this thread must not be blamed on us
  in_ = &in;
  const int r = SSL_do_handshake(ssl_);
  in_ = nullptr;
  if (r == 1) {
    established_ = true;
    // A TLS 1.2 server may resume without issuing a new ticket, and then no new-session callback
    // runs: put the session back so that the next connection resumes too. (TLS 1.3 tickets are
    // single use, RFC 8446 C.4; the server sends fresh ones.)
    if (client_ != nullptr && !cache_key_.empty() && SSL_session_reused(ssl_) == 1 &&
        SSL_version(ssl_) == TLS1_2_VERSION) {
      client_->store(cache_key_, SSL_get1_session(ssl_));
    }
    return Step::kOk;
  }
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) return Step::kWantRead;
  if (e == SSL_ERROR_WANT_WRITE) return Step::kWantWrite;
  return fail(e);
}

ssize_t Session::read(Input& in, char* dst, size_t cap, Step& step) {
  if (!failure_.empty()) {
    step = Step::kError;
    return 0;
  }
  if (peer_closed_) {
    step = Step::kClosed;
    return 0;
  }
  ERR_clear_error();
  in_ = &in;
  size_t got = 0;
  const int r = SSL_read_ex(ssl_, dst, cap, &got);
  in_ = nullptr;
  if (r == 1) {
    established_ = true;
    step = Step::kOk;
    return static_cast<ssize_t>(got);
  }
  const int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ) {
    step = Step::kWantRead;
  } else if (e == SSL_ERROR_WANT_WRITE) {
    step = Step::kWantWrite;
  } else {
    step = fail(e);
  }
  return 0;
}

bool Session::has_buffered_plaintext() const { return SSL_pending(ssl_) > 0; }

size_t Session::write(const char* src, size_t n, Step& step) {
  if (!failure_.empty() || sent_close_) {
    step = Step::kError;
    return 0;
  }
  const size_t pending = out_.size() - out_off_;
  if (n == 0) {
    step = Step::kOk;
    return 0;
  }
  if (pending >= kMaxPendingOutput) {
    step = Step::kWantWrite;
    return 0;
  }
  const size_t take = std::min(n, kMaxPendingOutput - pending);
  ERR_clear_error();
  size_t written = 0;
  const int r = SSL_write_ex(ssl_, src, take, &written);
  if (r == 1) {
    step = written < n ? Step::kWantWrite : Step::kOk;
    return written;
  }
  const int e = SSL_get_error(ssl_, r);
  step = e == SSL_ERROR_WANT_READ ? Step::kWantRead : fail(e);
  return 0;
}

void Session::close_notify() {
  if (sent_close_ || !established_ || !failure_.empty()) return;
  sent_close_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // queues the alert into output(); we do not wait for the peer's
  ERR_clear_error();
}

void Session::release_buffers() {
  SSL_free_buffers(ssl_);  // refuses (harmlessly) while a buffer holds data
  if (out_off_ == out_.size()) {
    out_.release();
    out_off_ = 0;
  }
  spare_.release();
}

void Session::store_session(SSL_SESSION* s) {
  if (client_ != nullptr && !cache_key_.empty()) {
    client_->store(cache_key_, s);
  } else {
    SSL_SESSION_free(s);
  }
}

Session::Info Session::info(bool with_subject) const {
  Info i;
  i.failure = failure_;
  if (const char* sni = SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name)) i.sni = sni;
  if (!established_) return i;
  i.version = SSL_get_version(ssl_);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl_)) i.cipher = SSL_CIPHER_get_name(c);
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
  if (alpn != nullptr) i.alpn = std::string_view(reinterpret_cast<const char*>(alpn), alpn_len);
  i.resumed = SSL_session_reused(ssl_) == 1;
  if (with_subject) i.peer_subject = peer_subject();
  return i;
}

std::string_view Session::peer_subject() const {
  if (subject_known_ || !established_) return peer_subject_;
  subject_known_ = true;
  X509* peer = SSL_get0_peer_certificate(ssl_);
  if (peer != nullptr && (SSL_get_verify_mode(ssl_) & SSL_VERIFY_PEER) != 0 &&
      SSL_get_verify_result(ssl_) == X509_V_OK) {
    BIO* mem = BIO_new(BIO_s_mem());
    if (mem != nullptr) {
      // RFC 2253 form with controls and non-ASCII escaped: safe to put in a header field.
      X509_NAME_print_ex(mem, X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
      char* data = nullptr;
      const long len = BIO_get_mem_data(mem, &data);
      if (len > 0) peer_subject_.assign(data, static_cast<size_t>(len));
      BIO_free(mem);
    }
  }
  return peer_subject_;
}

}  // namespace ringway::tls
