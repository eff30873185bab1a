// splice_mechanisms: which way should a ringway worker move a Content-Length body, and from what
// size on (issue 3)? A standalone program, not Google Benchmark: it needs real loopback sockets,
// a second process and CPU accounting that includes io-wq kernel threads.
//
// Layout (the pinned layout of the comparison tool, one worker):
//   relay  = this process's only user thread, pinned to CPU 0, one io_uring, io-wq also pinned
//            to CPU 0 (io_uring_register_iowq_aff), like one ringway worker;
//   peer   = a forked process pinned to CPU 1 that writes bodies into the relay's source socket
//            and reads them (verifying every byte) from the relay's sink socket.
// The relay's CPU is CLOCK_PROCESS_CPUTIME_ID of this process, which sums the relay thread and
// every io-wq worker ("iou-wrk-*") of the process, including workers that exited; the thread's
// own share is CLOCK_THREAD_CPUTIME_ID, the rest is io-wq.
//
// Methods:
//   a copy        io_uring recv into a 64 KiB buffer, then io_uring send of it;
//   b uring-splice IORING_OP_SPLICE socket -> pipe, then IORING_OP_SPLICE pipe -> socket;
//   c poll+splice io_uring POLL_ADD for readiness, non-blocking splice(2) from the thread itself,
//                 the way src/engine/proxy/splice.cc pumps (splice in until EAGAIN);
//   d poll+splice as c, but a splice-in that returned less than it asked for is taken to mean the
//                 socket is drained: after pushing the pipe out, poll instead of trying again.
// Scenario 1: one long stream per method (1 GiB or a time bound), rounds interleaved.
// Scenario 2: ping-pong bodies of one size (the peer writes a body, waits until it has read it all
// back through the relay, writes the next), so every body is a separate transfer.

#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr size_t kCopyBuf = 64 * 1024;
constexpr unsigned kPipeSize = 1024 * 1024;
constexpr size_t kPeriod = 65521;         // prime: a duplicated or dropped chunk breaks the pattern
constexpr size_t kPeerChunk = 256 * 1024;  // peer's send/recv size

enum Method : char { kCopy = 'a', kUringSplice = 'b', kPollSplice = 'c', kPollSpliceShort = 'd' };

const char* method_name(char m) {
  switch (m) {
    case kCopy: return "a copy (recv+send)";
    case kUringSplice: return "b IORING_OP_SPLICE";
    case kPollSplice: return "c poll + splice(2)";
    case kPollSpliceShort: return "d poll + splice(2), short-read => poll";
  }
  return "?";
}

struct Cmd {
  uint32_t kind;  // 0 quit, 1 stream, 2 ping-pong
  uint32_t body;
  uint64_t total;       // stream: bytes; ping-pong: max bodies
  uint64_t limit_ns;    // time bound for the writer
};

struct Reply {
  uint64_t written = 0;
  uint64_t read = 0;
  uint64_t bodies = 0;
  uint32_t ok = 0;  // every byte read back matched the pattern
};

uint64_t clock_ns(clockid_t c) {
  timespec ts;
  clock_gettime(c, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
uint64_t now_ns() { return clock_ns(CLOCK_MONOTONIC); }

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "splice_mechanisms: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity");
}

bool read_full(int fd, void* p, size_t n) {
  auto* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = read(fd, c, n);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}
bool write_full(int fd, const void* p, size_t n) {
  auto* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t r = send(fd, c, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// Byte at stream offset o is pattern[o % kPeriod]; the buffer is long enough to send or compare
// kPeerChunk bytes from any phase without wrapping.
std::vector<unsigned char> make_pattern() {
  std::vector<unsigned char> p(kPeriod + kPeerChunk);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < kPeriod; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p[i] = static_cast<unsigned char>(x);
  }
  for (size_t i = kPeriod; i < p.size(); ++i) p[i] = p[i - kPeriod];
  return p;
}

int connect_lo(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  // A relay that stopped moving bytes must not leave the peer blocked for ever.
  const timeval tv{20, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads from the sink until EOF (or `limit` bytes when limit != 0), checking the pattern.
// Returns bytes read; clears ok on a mismatch.
uint64_t drain_verify(int fd, uint64_t& offset, const std::vector<unsigned char>& pat,
                      std::vector<unsigned char>& buf, uint64_t limit, uint32_t& ok) {
  uint64_t got = 0;
  while (limit == 0 || got < limit) {
    size_t want = buf.size();
    if (limit != 0) want = static_cast<size_t>(std::min<uint64_t>(want, limit - got));
    const ssize_t r = recv(fd, buf.data(), want, 0);
    if (r <= 0) break;
    if (std::memcmp(buf.data(), pat.data() + offset % kPeriod, static_cast<size_t>(r)) != 0) ok = 0;
    offset += static_cast<uint64_t>(r);
    got += static_cast<uint64_t>(r);
  }
  return got;
}

// The peer process: CPU 1, blocking sockets, one command at a time from the control socket.
void peer_main(int ctl, uint16_t src_port, uint16_t sink_port) {
  pin_to(1);
  const std::vector<unsigned char> pat = make_pattern();
  std::vector<unsigned char> rbuf(kPeerChunk);
  Cmd cmd;
  while (read_full(ctl, &cmd, sizeof cmd) && cmd.kind != 0) {
    const int src = connect_lo(src_port);
    const int sink = connect_lo(sink_port);
    Reply rep;
    rep.ok = 1;
    const uint64_t deadline = now_ns() + cmd.limit_ns;
    if (cmd.kind == 1) {
      std::thread writer([&] {
        pin_to(1);
        uint64_t o = 0;
        while (o < cmd.total && now_ns() < deadline) {
          const size_t n = static_cast<size_t>(std::min<uint64_t>(kPeerChunk, cmd.total - o));
          const ssize_t w = send(src, pat.data() + o % kPeriod, n, MSG_NOSIGNAL);
          if (w <= 0) break;
          o += static_cast<uint64_t>(w);
        }
        rep.written = o;
        shutdown(src, SHUT_WR);
      });
      uint64_t off = 0;
      rep.read = drain_verify(sink, off, pat, rbuf, 0, rep.ok);
      writer.join();
    } else {
      uint64_t o = 0;
      uint64_t roff = 0;
      while (rep.bodies < cmd.total && now_ns() < deadline) {
        // The body goes out in one send; the relay moves it while we already wait for it below,
        // exactly as a client sends a request and waits for the response.
        if (!write_full(src, pat.data() + o % kPeriod, cmd.body)) break;
        o += cmd.body;
        const uint64_t got = drain_verify(sink, roff, pat, rbuf, cmd.body, rep.ok);
        rep.read += got;
        if (got != cmd.body) break;
        ++rep.bodies;
      }
      rep.written = o;
      shutdown(src, SHUT_WR);
      rep.read += drain_verify(sink, roff, pat, rbuf, 0, rep.ok);
    }
    close(src);
    close(sink);
    if (!write_full(ctl, &rep, sizeof rep)) break;
  }
}

// --- relay side ---

struct RelayStats {
  uint64_t bytes = 0;
  uint64_t enters = 0;   // io_uring_submit_and_wait calls (each one enters the kernel)
  uint64_t splices = 0;  // splice(2) calls made by the thread
  uint64_t eagain = 0;   // splice(2) calls or IORING_OP_SPLICE results that returned EAGAIN
  bool error = false;
};

int submit_wait(io_uring* ring, RelayStats& st) {
  ++st.enters;
  int r = io_uring_submit_and_wait(ring, 1);
  if (r < 0) {
    errno = -r;
    die("io_uring_submit_and_wait");
  }
  io_uring_cqe* cqe;
  r = io_uring_peek_cqe(ring, &cqe);
  if (r < 0) {
    errno = -r;
    die("io_uring_peek_cqe");
  }
  const int res = cqe->res;
  io_uring_cqe_seen(ring, cqe);
  return res;
}

void relay_copy(io_uring* ring, int src, int sink, RelayStats& st) {
  alignas(64) static unsigned char buf[kCopyBuf];
  for (;;) {
    io_uring_prep_recv(io_uring_get_sqe(ring), src, buf, kCopyBuf, 0);
    const int n = submit_wait(ring, st);
    if (n == 0) return;
    if (n < 0) { st.error = true; return; }
    for (int off = 0; off < n;) {
      io_uring_prep_send(io_uring_get_sqe(ring), sink, buf + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
      const int w = submit_wait(ring, st);
      if (w <= 0) { st.error = true; return; }
      off += w;
    }
    st.bytes += static_cast<uint64_t>(n);
  }
}

// IORING_OP_SPLICE is always executed by io-wq (io_uring has no poll-driven path for it), and an
// io-wq worker that gets EAGAIN from a non-blocking file returns it as the result. So the sockets
// are blocking here and the worker sleeps in tcp_splice_read; EAGAIN is retried and counted.
void relay_uring_splice(io_uring* ring, int src, int sink, int pr, int pw, RelayStats& st) {
  for (;;) {
    io_uring_prep_splice(io_uring_get_sqe(ring), src, -1, pw, -1, kPipeSize, SPLICE_F_MOVE);
    const int n = submit_wait(ring, st);
    if (n == -EAGAIN) { ++st.eagain; continue; }
    if (n == 0) return;
    if (n < 0) { st.error = true; return; }
    for (int left = n; left > 0;) {
      io_uring_prep_splice(io_uring_get_sqe(ring), pr, -1, sink, -1, static_cast<unsigned>(left), SPLICE_F_MOVE);
      const int w = submit_wait(ring, st);
      if (w == -EAGAIN) { ++st.eagain; continue; }
      if (w <= 0) { st.error = true; return; }
      left -= w;
    }
    st.bytes += static_cast<uint64_t>(n);
  }
}

void wait_ready(io_uring* ring, int fd, unsigned events, RelayStats& st) {
  io_uring_prep_poll_add(io_uring_get_sqe(ring), fd, events);
  const int r = submit_wait(ring, st);
  if (r < 0) st.error = true;
}

void relay_poll_splice(io_uring* ring, int src, int sink, int pr, int pw, bool short_means_empty,
                       RelayStats& st) {
  unsigned in_pipe = 0;
  bool src_drained = false;  // only with short_means_empty: last splice-in came back short
  while (!st.error) {
    if (in_pipe > 0) {
      ++st.splices;
      const ssize_t n = splice(pr, nullptr, sink, nullptr, in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) { in_pipe -= static_cast<unsigned>(n); continue; }
      if (n < 0 && errno == EAGAIN) { ++st.eagain; wait_ready(ring, sink, POLLOUT, st); continue; }
      st.error = true;
      return;
    }
    if (src_drained) {
      src_drained = false;
      wait_ready(ring, src, POLLIN, st);
    }
    ++st.splices;
    const ssize_t n = splice(src, nullptr, pw, nullptr, kPipeSize, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      in_pipe = static_cast<unsigned>(n);
      st.bytes += static_cast<uint64_t>(n);
      src_drained = short_means_empty && static_cast<unsigned>(n) < kPipeSize;
      continue;
    }
    if (n == 0) return;
    if (errno == EAGAIN) { ++st.eagain; wait_ready(ring, src, POLLIN, st); continue; }
    st.error = true;
  }
}

void set_nonblock(int fd, bool on) {
  const int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
}

int count_iou_workers() {
  int n = 0;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    char path[300], comm[32] = {};
    std::snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
    FILE* f = std::fopen(path, "r");
    if (f == nullptr) continue;
    if (std::fgets(comm, sizeof comm, f) != nullptr && std::strncmp(comm, "iou-wrk", 7) == 0) ++n;
    std::fclose(f);
  }
  closedir(d);
  return n;
}

struct Run {
  char method;
  uint32_t body;  // 0 for the stream scenario
  uint64_t bytes = 0, bodies = 0;
  double wall_s = 0;
  double thread_cpu_us = 0, total_cpu_us = 0;  // total = thread + io-wq
  int iou_workers = 0;
  RelayStats st;
};

struct Env {
  io_uring ring;
  int listen_src, listen_sink;  // two listeners: no doubt about which accepted socket is which
  int ctl;
  int pr, pw;  // O_NONBLOCK pipe (methods c, d)
  int bpr, bpw;  // blocking pipe (method b, see relay_uring_splice)
};

int accept_one(int lfd) {
  const int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) die("accept");
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

Run run_one(Env& env, char method, uint32_t kind, uint32_t body, uint64_t total, double limit_s) {
  Cmd cmd{kind, body, total, static_cast<uint64_t>(limit_s * 1e9)};
  if (!write_full(env.ctl, &cmd, sizeof cmd)) die("control write");
  const int src = accept_one(env.listen_src);
  const int sink = accept_one(env.listen_sink);
  const bool nonblock = method != kUringSplice;
  set_nonblock(src, nonblock);
  set_nonblock(sink, nonblock);

  Run run;
  run.method = method;
  run.body = kind == 2 ? body : 0;
  const uint64_t w0 = now_ns();
  // Process clock outside the thread clock on both ends, so io-wq = process - thread is >= 0.
  const uint64_t p0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  const uint64_t t0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  switch (method) {
    case kCopy: relay_copy(&env.ring, src, sink, run.st); break;
    case kUringSplice: relay_uring_splice(&env.ring, src, sink, env.bpr, env.bpw, run.st); break;
    case kPollSplice: relay_poll_splice(&env.ring, src, sink, env.pr, env.pw, false, run.st); break;
    case kPollSpliceShort: relay_poll_splice(&env.ring, src, sink, env.pr, env.pw, true, run.st); break;
  }
  const uint64_t t1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
  const uint64_t p1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  const uint64_t w1 = now_ns();
  run.iou_workers = count_iou_workers();
  shutdown(sink, SHUT_WR);
  Reply rep;
  if (!read_full(env.ctl, &rep, sizeof rep)) die("control read");
  close(src);
  close(sink);
  run.bytes = run.st.bytes;
  run.bodies = rep.bodies;
  run.wall_s = static_cast<double>(w1 - w0) / 1e9;
  run.thread_cpu_us = static_cast<double>(t1 - t0) / 1e3;
  run.total_cpu_us = static_cast<double>(p1 - p0) / 1e3;
  if (run.st.error || !rep.ok || rep.read != rep.written || run.st.bytes != rep.written ||
      (kind == 2 && rep.bodies * body != rep.written)) {
    std::fprintf(stderr, "run %c body %u FAILED: relay error %d, verify ok %u, written %llu read %llu relayed %llu\n",
                 method, body, run.st.error, rep.ok, (unsigned long long)rep.written,
                 (unsigned long long)rep.read, (unsigned long long)run.st.bytes);
    std::exit(2);
  }
  return run;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

std::string loadavg() {
  char buf[128] = {};
  FILE* f = std::fopen("/proc/loadavg", "r");
  if (f != nullptr) {
    if (std::fgets(buf, sizeof buf, f) == nullptr) buf[0] = 0;
    std::fclose(f);
  }
  std::string s(buf);
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

struct Options {
  uint64_t s1_bytes = 1ull << 30;
  double s1_seconds = 4.0;
  int rounds = 3;
  std::string s1_methods = "abcd";
  uint64_t s2_bodies = 20000;
  double s2_seconds = 0.8;
  std::string s2_methods = "abcd";
  std::vector<uint32_t> sizes = {4096, 8192, 16384, 32768, 65536, 262144};
  bool s1 = true, s2 = true;
};

void usage() {
  std::fprintf(stderr,
               "usage: splice_mechanisms [--rounds=N] [--s1-mib=N] [--s1-seconds=S] [--s1-methods=abcd]\n"
               "       [--s2-bodies=N] [--s2-seconds=S] [--s2-methods=abcd] [--sizes=4,8,...(KiB)]\n"
               "       [--only=1|2]\n"
               "methods: a copy, b IORING_OP_SPLICE, c poll+splice(2), d c with short-read => poll\n");
  std::exit(64);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos) usage();
    const std::string k = a.substr(2, eq - 2), v = a.substr(eq + 1);
    if (k == "rounds") o.rounds = std::max(1, std::atoi(v.c_str()));
    else if (k == "s1-mib") o.s1_bytes = std::strtoull(v.c_str(), nullptr, 10) << 20;
    else if (k == "s1-seconds") o.s1_seconds = std::atof(v.c_str());
    else if (k == "s1-methods") o.s1_methods = v;
    else if (k == "s2-bodies") o.s2_bodies = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "s2-seconds") o.s2_seconds = std::atof(v.c_str());
    else if (k == "s2-methods") o.s2_methods = v;
    else if (k == "only") { o.s1 = v == "1"; o.s2 = v == "2"; }
    else if (k == "sizes") {
      o.sizes.clear();
      size_t p = 0;
      while (p < v.size()) {
        o.sizes.push_back(static_cast<uint32_t>(std::strtoul(v.c_str() + p, nullptr, 10) * 1024));
        const size_t c = v.find(',', p);
        if (c == std::string::npos) break;
        p = c + 1;
      }
    } else usage();
  }
  for (const std::string* m : {&o.s1_methods, &o.s2_methods})
    for (char c : *m)
      if (c < 'a' || c > 'd') usage();
  return o;
}

// Rotates the method order each round so no method always runs first (warm caches, io-wq workers
// already spawned by the previous run, etc.).
std::string order_for_round(const std::string& methods, int round) {
  std::string s = methods;
  if (!s.empty()) std::rotate(s.begin(), s.begin() + (round % static_cast<int>(s.size())), s.end());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::fprintf(stderr, "splice_mechanisms: needs CPUs 0 and 1\n");
    return 1;
  }

  Env env{};
  uint16_t ports[2];
  for (int i = 0; i < 2; ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &alen) != 0)
      die("listen");
    ports[i] = ntohs(a.sin_port);
    (i == 0 ? env.listen_src : env.listen_sink) = fd;
  }
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) != 0) die("socketpair");

  // Fork before any thread or ring exists, so the peer shares nothing with the relay.
  const pid_t peer = fork();
  if (peer < 0) die("fork");
  if (peer == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // the peer never outlives the relay
    if (getppid() == 1) _exit(1);
    close(sp[0]);
    close(env.listen_src);
    close(env.listen_sink);
    peer_main(sp[1], ports[0], ports[1]);
    _exit(0);
  }
  close(sp[1]);
  env.ctl = sp[0];
  alarm(170);  // whole program bound: a hang ends the process (and the peer with it)
  pin_to(0);

  // The ring as src/engine/ring/loop.cc sets it up.
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
  int r = io_uring_queue_init_params(8, &env.ring, &p);
  if (r < 0) {
    errno = -r;
    die("io_uring_queue_init_params");
  }
  {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    r = io_uring_register_iowq_aff(&env.ring, sizeof set, &set);
    if (r < 0) {
      errno = -r;
      die("io_uring_register_iowq_aff");
    }
  }
  int fds[2];
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) die("pipe2");
  env.pr = fds[0];
  env.pw = fds[1];
  if (pipe2(fds, O_CLOEXEC) != 0) die("pipe2");
  env.bpr = fds[0];
  env.bpw = fds[1];
  for (int fd : {env.pw, env.bpw})
    if (fcntl(fd, F_SETPIPE_SZ, kPipeSize) < static_cast<int>(kPipeSize)) die("F_SETPIPE_SZ 1 MiB");

  const uint64_t start = now_ns();
  std::printf("# splice_mechanisms: relay on CPU 0 (io-wq pinned to CPU 0), peer on CPU 1, loopback\n");
  std::printf("# load average at start: %s\n", loadavg().c_str());

  if (opt.s1) {
    std::vector<Run> runs;
    std::printf("\n# scenario 1: one stream of up to %llu MiB or %.1f s per run, %d rounds\n",
                (unsigned long long)(opt.s1_bytes >> 20), opt.s1_seconds, opt.rounds);
    std::printf("# round method MiB wall_s MiB/s thread_cpu_us iowq_cpu_us us/MiB enters splices eagain iou_wrk\n");
    for (int round = 0; round < opt.rounds; ++round) {
      for (char m : order_for_round(opt.s1_methods, round)) {
        Run run = run_one(env, m, 1, 0, opt.s1_bytes, opt.s1_seconds);
        const double mib = static_cast<double>(run.bytes) / (1 << 20);
        std::printf("  %d %c %.0f %.3f %.0f %.0f %.0f %.1f %llu %llu %llu %d\n", round, m, mib, run.wall_s,
                    mib / run.wall_s, run.thread_cpu_us, run.total_cpu_us - run.thread_cpu_us,
                    run.total_cpu_us / mib, (unsigned long long)run.st.enters,
                    (unsigned long long)run.st.splices, (unsigned long long)run.st.eagain, run.iou_workers);
        std::fflush(stdout);
        runs.push_back(run);
      }
    }
    std::printf("\n| method | MiB/s | relay CPU µs/MiB (total) | of which io-wq | CPU ms/GiB | kernel entries/MiB | iou-wrk threads |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|\n");
    for (char m : opt.s1_methods) {
      std::vector<double> rate, total, iowq, enters;
      int workers = 0;
      for (const Run& run : runs) {
        if (run.method != m) continue;
        const double mib = static_cast<double>(run.bytes) / (1 << 20);
        rate.push_back(mib / run.wall_s);
        total.push_back(run.total_cpu_us / mib);
        iowq.push_back((run.total_cpu_us - run.thread_cpu_us) / mib);
        enters.push_back(static_cast<double>(run.st.enters + run.st.splices) / mib);
        workers = std::max(workers, run.iou_workers);
      }
      std::printf("| %s | %.0f | %.1f | %.1f | %.0f | %.1f | %d |\n", method_name(m), median(rate),
                  median(total), median(iowq), median(total) * 1024 / 1000, median(enters), workers);
    }
    std::fflush(stdout);
  }

  if (opt.s2) {
    std::vector<Run> runs;
    std::printf("\n# scenario 2: ping-pong bodies, up to %llu bodies or %.1f s per run, %d rounds\n",
                (unsigned long long)opt.s2_bodies, opt.s2_seconds, opt.rounds);
    std::printf("# round size method bodies wall_s bodies/s thread_cpu_us iowq_cpu_us us/body enters/body splices/body\n");
    for (int round = 0; round < opt.rounds; ++round) {
      for (uint32_t size : opt.sizes) {
        for (char m : order_for_round(opt.s2_methods, round)) {
          Run run = run_one(env, m, 2, size, opt.s2_bodies, opt.s2_seconds);
          const double b = static_cast<double>(run.bodies);
          std::printf("  %d %u %c %llu %.3f %.0f %.0f %.0f %.2f %.2f %.2f\n", round, size, m,
                      (unsigned long long)run.bodies, run.wall_s, b / run.wall_s, run.thread_cpu_us,
                      run.total_cpu_us - run.thread_cpu_us, run.total_cpu_us / b, run.st.enters / b,
                      run.st.splices / b);
          std::fflush(stdout);
          runs.push_back(run);
        }
      }
    }
    std::printf("\n| body |");
    for (char m : opt.s2_methods) std::printf(" %s µs/body |", method_name(m));
    for (char m : opt.s2_methods) std::printf(" %c bodies/s |", m);
    if (opt.s2_methods.find('a') != std::string::npos)
      for (char m : opt.s2_methods)
        if (m != 'a') std::printf(" %c/a CPU |", m);
    std::printf("\n|---:|");
    for (size_t i = 0; i < opt.s2_methods.size() * 2; ++i) std::printf("---:|");
    if (opt.s2_methods.find('a') != std::string::npos)
      for (size_t i = 1; i < opt.s2_methods.size(); ++i) std::printf("---:|");
    std::printf("\n");
    for (uint32_t size : opt.sizes) {
      std::vector<double> cpu, rate;
      double copy_cpu = 0;
      for (char m : opt.s2_methods) {
        std::vector<double> c, r;
        for (const Run& run : runs) {
          if (run.method != m || run.body != size) continue;
          c.push_back(run.total_cpu_us / static_cast<double>(run.bodies));
          r.push_back(static_cast<double>(run.bodies) / run.wall_s);
        }
        cpu.push_back(median(c));
        rate.push_back(median(r));
        if (m == 'a') copy_cpu = median(c);
      }
      std::printf("| %u KiB |", size / 1024);
      for (double c : cpu) std::printf(" %.1f |", c);
      for (double r : rate) std::printf(" %.0f |", r);
      if (copy_cpu > 0)
        for (size_t i = 0; i < opt.s2_methods.size(); ++i)
          if (opt.s2_methods[i] != 'a') std::printf(" %.2f |", cpu[i] / copy_cpu);
      std::printf("\n");
    }
  }

  std::printf("\n# load average at end: %s; total %.1f s\n", loadavg().c_str(),
              static_cast<double>(now_ns() - start) / 1e9);
  Cmd quit{0, 0, 0, 0};
  write_full(env.ctl, &quit, sizeof quit);
  close(env.ctl);
  int status = 0;
  waitpid(peer, &status, 0);
  io_uring_queue_exit(&env.ring);
  for (int fd : {env.pr, env.pw, env.bpr, env.bpw, env.listen_src, env.listen_sink}) close(fd);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
