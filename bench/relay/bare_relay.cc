// bare_relay: the floor reference of the comparison tool (issue 12). A single-threaded io_uring TCP
// relay that does no HTTP work at all: for each accepted client it connects ONE upstream socket and
// copies bytes both ways until both sides have finished. Keep-alive works because nothing is parsed.
// It drives the kernel the way ringway's engine does (src/engine/ring/loop.cc, src/engine/net/):
// SINGLE_ISSUER|DEFER_TASKRUN ring, multishot accept, io_uring connect, single-shot receives that
// take a provided buffer only when data arrives, a send of that buffer, then the next receive. So
// its CPU per request is "what the kernel work of relaying costs here", the part no proxy avoids.
// Not a product: no timeouts, no limits, no configuration beyond the two addresses.
//
//   bare_relay --listen HOST:PORT --upstream HOST:PORT [--buffer-size BYTES]
//
// Objects: one Pair per client connection, owned by the main loop; a Pair is freed only when no
// operation of it is in flight (pending == 0), so a completion never finds a freed Pair.

#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr unsigned kRingEntries = 4096;
constexpr uint16_t kBufferGroup = 1;
constexpr uint32_t kBufferCount = 1024;  // power of two; one buffer held per busy direction
constexpr uint32_t kDefaultBufferSize = 16 * 1024;  // as the engine's receive buffers

// user_data = Pair pointer | op (Pairs are 8-aligned, so the low 3 bits are free).
enum Op : uint64_t {
  kOpAccept = 0,
  kOpConnect = 1,
  kOpRecv = 2,  // + direction
  kOpSend = 4,  // + direction
};
constexpr uint64_t kOpMask = 7;

// Direction d reads fd[d] and writes fd[1 - d]: 0 = client -> upstream, 1 = upstream -> client.
struct Dir {
  int bid = -1;      // the provided buffer being sent, -1 when none is held
  uint32_t off = 0;  // bytes of it already sent
  uint32_t len = 0;  // bytes received into it
  bool eof = false;  // the source sent FIN and it was passed on with shutdown(SHUT_WR)
};

struct alignas(8) Pair {
  int fd[2] = {-1, -1};  // 0 = client, 1 = upstream
  Dir dir[2];
  int pending = 0;  // SQEs in flight plus directions waiting for a buffer
  bool closing = false;
};

bool parse_address(const std::string& s, sockaddr_storage& ss, socklen_t& len) {
  std::string host;
  std::string port;
  if (!s.empty() && s[0] == '[') {  // [v6]:port
    const size_t end = s.find("]:");
    if (end == std::string::npos) return false;
    host = s.substr(1, end - 1);
    port = s.substr(end + 2);
  } else {
    const size_t colon = s.rfind(':');
    if (colon == std::string::npos) return false;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  char* end = nullptr;
  const long p = std::strtol(port.c_str(), &end, 10);
  if (port.empty() || *end != '\0' || p <= 0 || p > 65535) return false;
  ss = sockaddr_storage{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(p));
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

[[noreturn]] void die(const char* what, int err) {
  std::fprintf(stderr, "bare_relay: %s: %s\n", what, std::strerror(err));
  std::exit(1);
}

class Relay {
 public:
  Relay(const sockaddr_storage& up, socklen_t up_len, uint32_t buffer_size)
      : up_(up), up_len_(up_len), buffer_size_(buffer_size) {}

  void init(const sockaddr_storage& listen_addr, socklen_t listen_len) {
    io_uring_params p{};
    // As the engine: one thread submits and reaps, so completion work runs only when it asks.
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    int ret = io_uring_queue_init_params(kRingEntries, &ring_, &p);
    if (ret < 0) die("io_uring_queue_init (needs SINGLE_ISSUER|DEFER_TASKRUN, Linux >= 6.1)", -ret);
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (probe == nullptr) die("io_uring probe", ENOSYS);
    for (int op : {IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV, IORING_OP_SEND}) {
      if (!io_uring_opcode_supported(probe, op)) die("io_uring opcode missing", ENOSYS);
    }
    io_uring_free_probe(probe);
    init_buffers();

    listen_fd_ = socket(listen_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) die("socket", errno);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(listen_fd_, reinterpret_cast<const sockaddr*>(&listen_addr), listen_len) != 0) die("bind", errno);
    if (listen(listen_fd_, 4096) != 0) die("listen", errno);
    arm_accept();
  }

  [[noreturn]] void run() {
    for (;;) {
      io_uring_submit_and_wait(&ring_, 1);
      unsigned head;
      unsigned seen = 0;
      io_uring_cqe* cqe;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        dispatch(cqe);
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      publish();
      if (available_ > 0 && !starved_.empty()) {
        // Receives that found the buffer ring empty try again now that buffers came back.
        auto waiting = std::move(starved_);
        starved_.clear();
        for (auto [pair, d] : waiting) {
          --pair->pending;
          if (pair->closing) {
            maybe_free(pair);
          } else {
            arm_recv(pair, d);
          }
        }
      }
    }
  }

 private:
  // liburing 2.3 has no io_uring_setup_buf_ring: the ring is mapped and registered by hand, as in
  // src/engine/ring/loop.cc. Buffer memory is only touched (resident) once the kernel fills it.
  void init_buffers() {
    const size_t ring_bytes = kBufferCount * sizeof(io_uring_buf);
    void* mem = mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) die("mmap buffer ring", errno);
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = kBufferCount;
    reg.bgid = kBufferGroup;
    const int ret = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (ret < 0) die("io_uring_register_buf_ring", -ret);
    io_uring_buf_ring_init(br_);
    if (posix_memalign(reinterpret_cast<void**>(&base_), 4096, size_t{kBufferCount} * buffer_size_) != 0) {
      die("receive buffers", ENOMEM);
    }
    for (uint32_t i = 0; i < kBufferCount; ++i) give_back(static_cast<int>(i));
    publish();
  }

  char* data(int bid) const { return base_ + static_cast<size_t>(bid) * buffer_size_; }

  // Published in one batch after the completions of an iteration.
  void give_back(int bid) {
    io_uring_buf_ring_add(br_, data(bid), buffer_size_, static_cast<uint16_t>(bid),
                          io_uring_buf_ring_mask(kBufferCount), returned_++);
  }

  void publish() {
    if (returned_ == 0) return;
    io_uring_buf_ring_advance(br_, returned_);
    available_ += static_cast<uint32_t>(returned_);
    returned_ = 0;
  }

  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring_);
    while (s == nullptr) {
      io_uring_submit(&ring_);
      s = io_uring_get_sqe(&ring_);
    }
    return s;
  }

  static uint64_t tag(Pair* p, uint64_t op) { return reinterpret_cast<uint64_t>(p) | op; }

  void arm_accept() {
    io_uring_sqe* s = sqe();
    io_uring_prep_multishot_accept(s, listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    io_uring_sqe_set_data64(s, tag(nullptr, kOpAccept));
  }

  void arm_recv(Pair* p, int d) {
    io_uring_sqe* s = sqe();
    io_uring_prep_recv(s, p->fd[d], nullptr, buffer_size_, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(s, tag(p, kOpRecv + d));
    ++p->pending;
  }

  void arm_send(Pair* p, int d) {
    Dir& x = p->dir[d];
    io_uring_sqe* s = sqe();
    io_uring_prep_send(s, p->fd[1 - d], data(x.bid) + x.off, x.len - x.off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(s, tag(p, kOpSend + d));
    ++p->pending;
  }

  void dispatch(io_uring_cqe* cqe) {
    const uint64_t ud = io_uring_cqe_get_data64(cqe);
    const uint64_t op = ud & kOpMask;
    Pair* p = reinterpret_cast<Pair*>(ud & ~kOpMask);
    const int res = cqe->res;
    if (cqe->flags & IORING_CQE_F_BUFFER) --available_;
    if (op == kOpAccept) {
      on_accept(res, cqe->flags);
      return;
    }
    --p->pending;
    switch (op) {
      case kOpConnect: on_connect(p, res); break;
      case kOpRecv:
      case kOpRecv + 1: on_recv(p, static_cast<int>(op - kOpRecv), res, cqe->flags); break;
      case kOpSend:
      case kOpSend + 1: on_send(p, static_cast<int>(op - kOpSend), res); break;
      default: break;
    }
    maybe_free(p);
  }

  void on_accept(int res, uint32_t flags) {
    // The multishot accept ends on an error (e.g. EMFILE) or when the kernel drops it: re-arm.
    // No back-off: this is a benchmark reference, not something to run out of descriptors.
    if (!(flags & IORING_CQE_F_MORE)) arm_accept();
    if (res < 0) {
      std::fprintf(stderr, "bare_relay: accept: %s\n", std::strerror(-res));
      return;
    }
    int one = 1;
    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    const int up = socket(up_.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (up < 0) {
      std::fprintf(stderr, "bare_relay: socket: %s\n", std::strerror(errno));
      close(res);
      return;
    }
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    Pair* p = new_pair();
    p->fd[0] = res;
    p->fd[1] = up;
    io_uring_sqe* s = sqe();
    io_uring_prep_connect(s, up, reinterpret_cast<const sockaddr*>(&up_), up_len_);
    io_uring_sqe_set_data64(s, tag(p, kOpConnect));
    ++p->pending;
  }

  void on_connect(Pair* p, int res) {
    if (p->closing) return;
    if (res < 0) {
      std::fprintf(stderr, "bare_relay: connect upstream: %s\n", std::strerror(-res));
      close_pair(p);
      return;
    }
    arm_recv(p, 0);
    arm_recv(p, 1);
  }

  void on_recv(Pair* p, int d, int res, uint32_t flags) {
    const int bid = (flags & IORING_CQE_F_BUFFER) ? static_cast<int>(flags >> IORING_CQE_BUFFER_SHIFT) : -1;
    if (p->closing) {
      if (bid >= 0) give_back(bid);
      return;
    }
    if (res == -ENOBUFS) {  // every buffer is held by a send in flight: wait for one to come back
      ++p->pending;
      starved_.emplace_back(p, d);
      return;
    }
    if (res <= 0) {
      if (bid >= 0) give_back(bid);
      if (res < 0) {
        close_pair(p);
        return;
      }
      // FIN from the source: pass it on (the other direction may still have bytes to carry,
      // e.g. a response after the request side closed) and close once both sides are done.
      Dir& x = p->dir[d];
      x.eof = true;
      shutdown(p->fd[1 - d], SHUT_WR);
      if (p->dir[1 - d].eof) close_pair(p);
      return;
    }
    Dir& x = p->dir[d];
    x.bid = bid;
    x.off = 0;
    x.len = static_cast<uint32_t>(res);
    arm_send(p, d);
  }

  void on_send(Pair* p, int d, int res) {
    Dir& x = p->dir[d];
    if (p->closing || res <= 0) {
      give_back(x.bid);
      x.bid = -1;
      if (!p->closing) close_pair(p);
      return;
    }
    x.off += static_cast<uint32_t>(res);
    if (x.off < x.len) {  // a short send: the rest goes next, before any new receive
      arm_send(p, d);
      return;
    }
    give_back(x.bid);
    x.bid = -1;
    arm_recv(p, d);
  }

  // Ends both connections. In-flight operations still hold their sockets: shutdown() makes
  // pending receives complete (0) and sends fail, and a connect in progress is aborted; the
  // descriptors are closed in maybe_free once the last completion is in.
  void close_pair(Pair* p) {
    p->closing = true;
    shutdown(p->fd[0], SHUT_RDWR);
    shutdown(p->fd[1], SHUT_RDWR);
  }

  void maybe_free(Pair* p) {
    if (!p->closing || p->pending > 0) return;
    close(p->fd[0]);
    close(p->fd[1]);
    *p = Pair{};
    free_.push_back(p);
  }

  Pair* new_pair() {
    if (free_.empty()) {
      pairs_.push_back(std::make_unique<Pair>());
      return pairs_.back().get();
    }
    Pair* p = free_.back();
    free_.pop_back();
    return p;
  }

  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr;
  char* base_ = nullptr;
  int returned_ = 0;        // buffers given back since the last publish
  uint32_t available_ = 0;  // buffers the kernel can take now
  int listen_fd_ = -1;
  sockaddr_storage up_;
  socklen_t up_len_;
  uint32_t buffer_size_;
  std::vector<std::unique_ptr<Pair>> pairs_;
  std::vector<Pair*> free_;
  std::vector<std::pair<Pair*, int>> starved_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: bare_relay --listen HOST:PORT --upstream HOST:PORT [--buffer-size BYTES]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  sockaddr_storage listen_addr{};
  sockaddr_storage up{};
  socklen_t listen_len = 0;
  socklen_t up_len = 0;
  uint32_t buffer_size = kDefaultBufferSize;
  std::string listen_text;
  std::string up_text;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    const std::string v = argv[++i];
    if (a == "--listen") {
      if (!parse_address(v, listen_addr, listen_len)) usage();
      listen_text = v;
    } else if (a == "--upstream") {
      if (!parse_address(v, up, up_len)) usage();
      up_text = v;
    } else if (a == "--buffer-size") {
      const long n = std::strtol(v.c_str(), nullptr, 10);
      if (n < 1024 || n > (1 << 20)) usage();
      buffer_size = static_cast<uint32_t>(n);
    } else {
      usage();
    }
  }
  if (listen_len == 0 || up_len == 0) usage();
  std::signal(SIGPIPE, SIG_IGN);
  Relay relay(up, up_len, buffer_size);
  relay.init(listen_addr, listen_len);
  std::fprintf(stderr, "bare_relay: listening on %s, relaying to %s\n", listen_text.c_str(), up_text.c_str());
  relay.run();
}
