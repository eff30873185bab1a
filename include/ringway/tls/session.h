// One TLS connection's state machine with no I/O of its own, for the transport seam in
// src/engine/net: the owner (one worker's connection) hands in ciphertext it received, takes out
// plaintext, puts plaintext in, and sends the ciphertext the session leaves in its output buffer.
// Owned and used by one thread. A server Session keeps its SSL_CTX alive (OpenSSL refcount); a
// client Session needs its ClientContext to outlive it.
//
// Data flow (no extra copies of our own):
//   received ciphertext: OpenSSL reads it through a custom BIO straight from the caller's receive
//     buffer (an `Input` view, valid only during the call) into its record buffer, where it is
//     decrypted in place; `Input::used` says how much it took. Unused bytes stay the caller's and
//     are offered again (followed by more) on the next call.
//   sealed output: the BIO appends records to a session-owned buffer; the caller sends straight
//     from output() and reports output_sent(). Send whatever output() holds after every call,
//     including after kError (it may hold an alert) and after close_notify().
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ringway/core/skewed.h"
#include "ringway/tls/server_context.h"  // ClientAuth

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_session_st SSL_SESSION;

namespace ringway::tls {

class ServerContext;
class ClientContext;

// Ciphertext offered to one call.
struct Input {
  const char* data = nullptr;
  size_t size = 0;
  size_t used = 0;  // bytes consumed from the front; each call adds what it took
  std::span<const char> rest() const { return {data + used, size - used}; }
};

class Session {
 public:
  enum class Step : uint8_t {
    kOk,         // done (handshake complete / bytes moved)
    kWantRead,   // needs more received ciphertext before it can progress
    kWantWrite,  // output() is full: send it before writing more plaintext
    kClosed,     // the peer sent close_notify (RFC 8446 6.1): no more plaintext will come
    kError,      // fatal: send output() (an alert, if any) and close; failure() says why
  };

  // What the access log and /metrics report. Views stay valid while the Session lives.
  struct Info {
    std::string_view version;       // "TLSv1.3"; "" before the handshake
    std::string_view cipher;        // "TLS_AES_128_GCM_SHA256"
    std::string_view sni;           // server name the client asked for ("" if none)
    std::string_view alpn;          // "http/1.1" or ""
    bool resumed = false;
    std::string peer_subject;       // verified peer certificate subject (RFC 2253), "" if none
    std::string_view failure;       // see failure()
  };

  // Output buffered beyond this makes write() stop with kWantWrite (four full records).
  static constexpr size_t kMaxPendingOutput = 4 * (16 * 1024 + 256);
  // Plaintext per record: the protocol maximum (RFC 8446 5.1). OpenSSL's default, set explicitly.
  static constexpr size_t kMaxRecordPlaintext = 16 * 1024;

  // Terminating side. nullptr only if OpenSSL cannot allocate.
  static std::unique_ptr<Session> server(const ServerContext& ctx);
  // Server side, before the handshake: this connection's client-certificate policy instead of
  // its context's (a listener of its own; the context must name a client CA for anything but
  // kNone).
  void set_client_auth(ClientAuth a);
  // Originating side: server_name is sent as SNI (unless it is an IP literal, RFC 6066 3) and
  // checked against the certificate (RFC 9110 4.3.4) when ctx verifies. cache_key names the
  // target in ctx's session cache ("" = no resumption), e.g. "host:port". nullptr when ctx
  // verifies and server_name is empty (a chain check without a name check proves nothing).
  static std::unique_ptr<Session> client(ClientContext& ctx, std::string_view server_name,
                                         std::string cache_key = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Drives the handshake with what `in` holds. kOk once established (any bytes left in `in`
  // are application records: pass them to read()). kWantRead: all of `in` was consumed; send
  // output(), wait for more.
  Step handshake(Input& in);
  bool established() const { return established_; }

  // Decrypts into dst. >0: bytes of plaintext (step kOk; call again, more may be buffered).
  // 0: step says why (kWantRead, kClosed, kError). Valid only once established. Call it until it
  // returns 0: with kWantRead all of `in` has then been consumed (OpenSSL keeps a partial record
  // in its own buffer), so the caller may recycle its receive buffer.
  // Also call it when nothing new arrived but has_buffered_plaintext() is true.
  ssize_t read(Input& in, char* dst, size_t cap, Step& step);
  // True when OpenSSL holds decrypted bytes not yet read (read() needs no new input for them).
  bool has_buffered_plaintext() const;

  // Seals up to n bytes into output(). Returns bytes taken; fewer than n with step kWantWrite when
  // the output buffer is full (send, then call again).
  size_t write(const char* src, size_t n, Step& step);

  std::span<const char> output() const { return {out_.data() + out_off_, out_.size() - out_off_}; }
  void output_sent(size_t n);
  // Moves the sealed output out as the caller's buffer, so the caller can send from it while the
  // session goes on (a read may append a ticket or an alert to output() and move its bytes). The
  // session seals further output into another buffer. Give it back with recycle_output().
  core::SkewedBytes take_output();
  void recycle_output(core::SkewedBytes&& buf);

  // Queues our close_notify alert (RFC 8446 6.1) into output(). Idempotent.
  void close_notify();
  bool peer_closed() const { return peer_closed_; }

  // Idle connection: frees OpenSSL's record buffers (SSL_free_buffers, refused while they hold
  // data) and our output buffer if it is empty. They come back on the next use.
  void release_buffers();

  // with_subject false leaves peer_subject empty (no copy: the per-request access log path).
  Info info(bool with_subject = true) const;
  // The verified peer certificate's subject (RFC 2253, controls and non-ASCII escaped), "" if the
  // peer sent none or it was not verified. Computed once per connection, then a view of it.
  std::string_view peer_subject() const;
  // True on the first call only: the engine counts each connection's handshake (success or
  // failure) once.
  bool mark_counted() { return !std::exchange(counted_, true); }
  // Short stable reason for metrics ("unknown_ca", "no_shared_cipher", "protocol_version",
  // "bad_record", "certificate_verify_failed", "hostname_mismatch", "expired", ...); "" if none.
  std::string_view failure() const { return failure_; }

  // The OpenSSL object, for diagnostics and tests (e.g. to restrict a test client); the Session
  // keeps owning it.
  SSL* native_handle() const { return ssl_; }

  // Used by the BIO (src/tls/session.cc); not for callers.
  int bio_read(char* dst, size_t n);
  void bio_write(const char* src, size_t n);
  // Used by the client's new-session callback.
  void store_session(SSL_SESSION* s);

 private:
  Session() = default;
  bool init(SSL_CTX* ctx, bool is_server);
  Step fail(int ssl_error);

  SSL* ssl_ = nullptr;
  ClientContext* client_ = nullptr;   // client side only
  std::string cache_key_;             // client side only
  const Input* in_ = nullptr;         // set for the duration of one call
  // Sealed records, in skewed memory: OpenSSL's record buffer is page-aligned, and appending
  // records from it to page-aligned memory is the slow copy core/skewed.h explains.
  core::SkewedBytes out_;
  core::SkewedBytes spare_;  // a sent buffer, reused so taking output allocates nothing
  size_t out_off_ = 0;
  std::string_view failure_;
  mutable std::string peer_subject_;  // peer_subject() cache
  mutable bool subject_known_ = false;
  bool counted_ = false;
  bool established_ = false;
  bool peer_closed_ = false;
  bool sent_close_ = false;
};

}  // namespace ringway::tls
