// A connection on either side: the socket, its transport, the bytes received and not yet consumed,
// and the one send in flight. Only the transport touches the socket for data: every receive,
// send, splice, shutdown and socket option below goes through it. Owned by one worker (inside a
// DownstreamConn or an UpstreamConn); recycled with a new generation once no SQE refers to it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>
#include <sys/socket.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringway/core/skewed.h"
#include "ringway/core/timer_list.h"
#include "ringway/net/buffers.h"
#include "ringway/ring/loop.h"
#include "ringway/tls/session.h"

namespace ringway::net {

// One send in flight on a socket: up to two ranges (a head and a body part), resumed on short
// writes. What it holds is released by the owner once the send completes.
struct SendOp {
  iovec iov[2]{};
  msghdr msg{};
  Buf hold[2];
  uint8_t count = 0;
  bool busy = false;
  // Advances over the n bytes the kernel took; true if some remain (a short write to resume).
  bool advance(uint32_t n) {
    bool more = false;
    for (uint8_t i = 0; i < count; ++i) {
      const uint32_t take = n < hold[i].len ? n : hold[i].len;
      hold[i].off += take;
      hold[i].len -= take;
      n -= take;
      if (hold[i].len > 0) more = true;
    }
    return more;
  }
};

enum class TransportKind : uint8_t {
  kPlain,  // bytes on the wire are the HTTP bytes
  kTls,    // user-space TLS (tls::Session): received ciphertext is opened into plaintext, sends
           // are sealed, a handshake runs first, close sends close_notify; no splice either way
  // kKernelTls (later): records handed to the kernel after the handshake; splice again.
};

// What stands between a socket and the HTTP layer. It does no I/O of its own: the worker's ring
// receives and sends, the transport says what the bytes mean. The plain transport is the identity
// and costs one switch on the kind (no virtual call on the hot path).
class Transport {
 public:
  TransportKind kind() const { return kind_; }
  bool tls() const { return kind_ == TransportKind::kTls; }
  void reset(TransportKind k, std::unique_ptr<tls::Session> session = nullptr);
  // Whether body bytes may bypass user space: socket -> pipe (in) and pipe -> socket (out).
  bool can_splice_in() const { return kind_ == TransportKind::kPlain; }
  bool can_splice_out() const { return kind_ == TransportKind::kPlain; }
  // Whether HTTP bytes may flow (a TLS handshake may still be running).
  bool ready() const { return kind_ == TransportKind::kPlain || session_->established(); }
  tls::Session* session() const { return session_.get(); }

 private:
  friend struct Conn;
  TransportKind kind_ = TransportKind::kPlain;
  // TLS only.
  std::unique_ptr<tls::Session> session_;
  core::SkewedBytes wire_;      // ciphertext of the send in flight (taken from the session)
  uint32_t wire_off_ = 0;
  uint32_t sealed_ = 0;         // plaintext of the send op's ranges sealed so far
  std::vector<char> stash_;     // received ciphertext not consumed yet (the input was full)
};

// What received bytes came to.
enum class RecvResult : uint8_t {
  kData,      // plaintext appended to `in`
  kNothing,   // taken, but no plaintext yet (a handshake step, part of a record)
  kTooLarge,  // `in` would exceed the limit (a head too large)
  kClosed,    // the peer ended the transport cleanly (TLS close_notify)
  kError,     // the transport failed (bad record, handshake failure): close
};

struct Conn {
  uint32_t index = 0;
  uint32_t gen = 0;
  int fd = -1;
  uint16_t pending = 0;    // SQEs in flight that carry this conn's user_data
  bool in_use = false;
  bool recv_armed = false;
  bool starved = false;    // a receive found the buffer ring empty; re-armed when buffers return
  bool closing = false;
  bool flushing = false;   // the send in flight carries only the transport's own bytes (TLS)
  uint32_t rcvlowat = 1;   // SO_RCVLOWAT while a splice waits for body bytes
  Buf in;                  // received plaintext, not yet consumed
  SendOp send;
  Transport transport;
  core::TimerNode timer;   // one timeout at a time (which one: the owner's business)

  // The connection whose timer node n is.
  static Conn* of_timer(core::TimerNode* n) {
    return reinterpret_cast<Conn*>(reinterpret_cast<char*>(n) - offsetof(Conn, timer));
  }

  // A new socket in this slot (the slot keeps its index; its generation moved on at recycle).
  // A TLS transport comes with its session.
  void open(int socket_fd, TransportKind kind, std::unique_ptr<tls::Session> session = nullptr);

  // --- the socket, always through the transport ---
  // A receive into a provided buffer of br; poll_first when no data can be there yet. `limit` is
  // the one received() will be given: a plain connection holding part of a head receives no
  // more than fits under it (the rest stays in the socket), so a large buffer never turns a
  // head that fits into a "too large" one. TLS takes a whole buffer: what does not fit waits in
  // the transport.
  void prep_recv(io_uring_sqe* s, const ring::BufferRing& br, uint32_t limit, bool poll_first,
                 uint64_t ud) const;
  // Received bytes (provided buffer bid) become plaintext in `in`; the buffer is returned to b.
  // TLS reads at most up to `limit` bytes of `in`; the rest waits in the transport
  // (has_pending_plaintext) until the owner wants more.
  RecvResult received(Buffers& b, char* data, uint32_t n, int32_t bid, uint32_t limit);
  // Plaintext (or ciphertext) the transport holds that no receive needs to bring.
  bool has_pending_plaintext() const;
  RecvResult deliver_pending(Buffers& b, uint32_t limit);
  // The connection went idle (keep-alive, pooled): TLS frees what only a busy connection needs
  // (OpenSSL's record buffers, the last flight's ciphertext buffer, an empty stash), so an idle
  // TLS connection costs about what nginx's does. Nothing to do while bytes are held or in flight.
  void release_idle_buffers();
  // Bytes the transport must send on its own (a handshake flight, a session ticket, an alert).
  bool has_transport_output() const;
  // Originating side: starts the handshake (the ClientHello goes into the transport's output).
  // False if the transport failed at once.
  bool begin_handshake();

  // Submits what `send` holds (and what the transport must send) as one SQE; false (no SQE) if
  // there is nothing.
  bool start_send(ring::Loop& loop, uint64_t ud);
  // Interprets a send completion: plain: res. TLS: kSendAgain while ciphertext or plaintext of the
  // send op is left (submit start_send again), then the plaintext bytes the op carried (what
  // SendOp::advance expects); errors as they are.
  static constexpr int kSendAgain = INT_MIN;
  int send_completed(int res);
  // A send completion as the owner sees it: true if the transport submitted the rest of the same
  // send (one more SQE in flight, counted in pending); else res is what the send op carried.
  bool complete_send(int& res, ring::Loop& loop, uint64_t ud);
  // Submits what the transport must send on its own, if anything and nothing is in flight.
  void flush(ring::Loop& loop, uint64_t ud);
  // A short message sent now, outside `send` (e.g. 100 Continue while `send` is idle). Best
  // effort: a peer that cannot take a few bytes will not get its request answered either.
  void send_now(std::string_view bytes);
  // Ends our direction (lingering close): FIN for plain; TLS sends close_notify first (best
  // effort: a peer that cannot take a few bytes now does not get it).
  void shutdown_write();
  // TLS failed: its alert, if any, is sent now (best effort) before the close.
  void send_alert_now();
  // Body bytes socket -> pipe and pipe -> socket; only when can_splice_in()/can_splice_out().
  // Non-blocking; return as splice(2).
  ssize_t splice_to_pipe(int pipe_w, size_t n);
  ssize_t splice_from_pipe(int pipe_r, size_t n);
  // SO_RCVLOWAT for a splice waiting for `remaining` more bytes (capped), or 1 to reset. Only a
  // transport that can splice in uses it: a TLS record boundary is not a byte count.
  void set_rcvlowat(uint64_t remaining);
  // Closes the socket; abort sends RST instead of FIN.
  void close_socket(bool abort);
};

}  // namespace ringway::net
