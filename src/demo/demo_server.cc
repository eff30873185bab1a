#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "demo_handlers.h"
#include "ringway/demo/demo_upstreams.h"
#include "ringway/http/parser.h"
#include "ringway/http/request.h"

namespace ringway::demo {

namespace {

using Clock = std::chrono::steady_clock;

// Reading stops while this much response data is unsent (pipelining clients that do not read)
// or this much request data is buffered; level-triggered epoll resumes it later.
constexpr size_t kMaxPendingOut = 4 * 1024 * 1024;
constexpr size_t kMaxPendingIn = 2 * kDemoMaxBody + 64 * 1024;
// Chunk framing may add overhead to the 1 MiB of content; the raw chunked body gets twice that.
constexpr size_t kMaxRawChunked = 2 * kDemoMaxBody;
// After a "Connection: close" response we shut down our side and discard input for a while
// before closing, so that unread request bytes do not turn into a RST that destroys the
// response in flight (RFC 9112 section 9.6).
constexpr auto kLinger = std::chrono::seconds(2);
constexpr size_t kLingerDiscardMax = 4 * 1024 * 1024;

struct Conn {
  explicit Conn(const http::Limits& limits) : parser(limits) {}
  int fd = -1;
  Service svc = Service::kUsers;
  http::RequestParser parser;
  std::string in;
  std::string out;
  size_t out_off = 0;
  bool in_body = false;
  bool chunked = false;
  DemoRequest cur;
  std::string raw_body;
  bool close_after = false;  // no more requests: close once out is sent
  bool read_eof = false;
  bool lingering = false;
  Clock::time_point linger_since;
  size_t discarded = 0;
  uint32_t events = 0;  // current epoll interest
};

}  // namespace

struct DemoServer::Impl {
  http::Limits limits;
  int epfd = -1;
  int stop_fd = -1;
  int listen_fd[2] = {-1, -1};  // indexed by Service
  std::thread thread;
  std::unordered_map<int, std::unique_ptr<Conn>> conns;
  DemoState state;
  http::Request req;

  ~Impl() {
    for (auto& [fd, c] : conns) ::close(fd);
    for (int fd : listen_fd) {
      if (fd >= 0) ::close(fd);
    }
    if (stop_fd >= 0) ::close(stop_fd);
    if (epfd >= 0) ::close(epfd);
  }

  void run();
  void accept_all(Service svc);
  void on_conn(Conn& c, uint32_t ev);
  void read_some(Conn& c);
  void process(Conn& c);
  void start_request(Conn& c);
  void finish_error(Conn& c, uint16_t status, std::string_view detail);
  bool flush(Conn& c);
  void update(Conn& c);
  void close_conn(int fd);
};

namespace {

bool listen_on(uint16_t port, int& fd_out, uint16_t& bound, std::string& error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    error = "bind 127.0.0.1:" + std::to_string(port) + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (::listen(fd, 1024) != 0) {
    error = std::string("listen: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  bound = ntohs(addr.sin_port);
  fd_out = fd;
  return true;
}

}  // namespace

void DemoServer::Impl::run() {
  epoll_event events[64];
  bool running = true;
  while (running) {
    const int n = ::epoll_wait(epfd, events, 64, 1000);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == stop_fd) {
        running = false;
      } else if (fd == listen_fd[0]) {
        accept_all(Service::kUsers);
      } else if (fd == listen_fd[1]) {
        accept_all(Service::kProducts);
      } else {
        auto it = conns.find(fd);
        if (it != conns.end()) on_conn(*it->second, events[i].events);
      }
    }
    // Lingering connections whose peers never close are given up after kLinger.
    const auto now = Clock::now();
    std::vector<int> expired;
    for (auto& [fd, c] : conns) {
      if (c->lingering && now - c->linger_since > kLinger) expired.push_back(fd);
    }
    for (int fd : expired) close_conn(fd);
  }
}

void DemoServer::Impl::accept_all(Service svc) {
  for (;;) {
    const int fd = ::accept4(listen_fd[static_cast<int>(svc)], nullptr, nullptr,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or EMFILE & co: retried on the next readiness
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto c = std::make_unique<Conn>(limits);
    c->fd = fd;
    c->svc = svc;
    c->events = EPOLLIN;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ::close(fd);
      continue;
    }
    conns.emplace(fd, std::move(c));
  }
}

void DemoServer::Impl::on_conn(Conn& c, uint32_t ev) {
  const int fd = c.fd;
  if (ev & EPOLLERR) {
    close_conn(fd);
    return;
  }
  if (c.lingering) {
    char buf[16384];
    for (;;) {
      const ssize_t r = ::recv(fd, buf, sizeof(buf), 0);
      if (r > 0) {
        c.discarded += static_cast<size_t>(r);
        if (c.discarded > kLingerDiscardMax) break;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
      break;  // EOF, error, or enough discarded
    }
    close_conn(fd);
    return;
  }
  if (ev & (EPOLLIN | EPOLLHUP)) read_some(c);
  process(c);
  if (!flush(c)) {
    close_conn(fd);
    return;
  }
  update(c);
}

void DemoServer::Impl::read_some(Conn& c) {
  char buf[65536];
  while (!c.read_eof && c.in.size() < kMaxPendingIn) {
    const ssize_t r = ::recv(c.fd, buf, sizeof(buf), 0);
    if (r > 0) {
      c.in.append(buf, static_cast<size_t>(r));
    } else if (r == 0) {
      c.read_eof = true;
    } else if (errno == EINTR) {
      continue;
    } else {
      if (errno != EAGAIN) c.read_eof = true;  // reset: nothing more will come
      return;
    }
  }
}

void DemoServer::Impl::start_request(Conn& c) {
  DemoRequest& d = c.cur;
  d.method.assign(req.method_name);
  d.path.assign(req.path);
  d.has_query = req.has_query;
  d.query.assign(req.query);
  bool found = false;
  d.x_forwarded_for.assign(req.header("X-Forwarded-For", &found));
  d.has_x_forwarded_for = found;
  found = false;
  d.x_gateway.assign(req.header("X-Gateway", &found));
  d.has_x_gateway = found;
  d.body.clear();
  d.keep_alive = req.keep_alive;
  d.http10 = req.version_minor == 0;
}

void DemoServer::Impl::finish_error(Conn& c, uint16_t status, std::string_view detail) {
  write_error(c.svc, status, detail, c.out);
  c.close_after = true;
}

void DemoServer::Impl::process(Conn& c) {
  size_t pos = 0;
  while (!c.close_after && c.out.size() - c.out_off < kMaxPendingOut) {
    const char* data = c.in.data() + pos;
    const size_t avail = c.in.size() - pos;
    if (avail == 0) break;
    if (!c.in_body) {
      const size_t head = http::find_head_end(data, avail);
      if (head == 0) {
        const http::ParseError e = http::check_incomplete_head(data, avail, limits);
        if (e.status != 0) finish_error(c, e.status, e.detail);
        break;
      }
      if (c.parser.parse_head(data, head, req) != http::ParseStatus::kDone) {
        finish_error(c, c.parser.error().status, c.parser.error().detail);
        break;
      }
      pos += head;
      start_request(c);
      const bool has_body = req.framing == http::BodyFraming::kChunked ||
                            (req.framing == http::BodyFraming::kLength && req.content_length > 0);
      if (!has_body) {
        if (!handle_request(c.svc, c.cur, state, c.out)) c.close_after = true;
        continue;
      }
      if (req.framing == http::BodyFraming::kLength && req.content_length > kDemoMaxBody) {
        finish_error(c, 413, "request body larger than 1 MiB");
        break;
      }
      c.in_body = true;
      c.chunked = req.framing == http::BodyFraming::kChunked;
      c.raw_body.clear();
      // RFC 9110 section 10.1.1: a client that sent Expect: 100-continue may wait for this
      // before sending the body; only worth it if no body bytes have arrived yet.
      if (req.expect_continue && pos == c.in.size() && !c.cur.http10) {
        c.out += "HTTP/1.1 100 Continue\r\n\r\n";
      }
      continue;
    }
    size_t consumed = 0;
    const http::ParseStatus st = c.parser.feed_body(data, avail, &consumed);
    if (st == http::ParseStatus::kError) {
      finish_error(c, c.parser.error().status, c.parser.error().detail);
      break;
    }
    c.raw_body.append(data, consumed);
    pos += consumed;
    if (c.raw_body.size() > (c.chunked ? kMaxRawChunked : kDemoMaxBody)) {
      finish_error(c, 413, "request body larger than 1 MiB");
      break;
    }
    if (st != http::ParseStatus::kDone) {
      if (consumed == 0) break;  // need more bytes
      continue;
    }
    c.in_body = false;
    if (c.chunked) {
      if (!decode_chunked(c.raw_body, c.cur.body)) {
        finish_error(c, 400, "malformed chunked body");
        break;
      }
      if (c.cur.body.size() > kDemoMaxBody) {
        finish_error(c, 413, "request body larger than 1 MiB");
        break;
      }
    } else {
      c.cur.body.swap(c.raw_body);
    }
    if (!handle_request(c.svc, c.cur, state, c.out)) c.close_after = true;
  }
  c.in.erase(0, pos);
  if (c.read_eof && !c.close_after && c.in_body) {
    // The peer closed in the middle of a body: nothing sensible to answer.
    c.close_after = true;
  }
}

bool DemoServer::Impl::flush(Conn& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t w = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                             MSG_NOSIGNAL);
    if (w > 0) {
      c.out_off += static_cast<size_t>(w);
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && errno == EAGAIN) {
      break;
    } else {
      return false;
    }
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  } else if (c.out_off > 65536 && c.out_off * 2 > c.out.size()) {
    c.out.erase(0, c.out_off);
    c.out_off = 0;
  }
  return true;
}

void DemoServer::Impl::update(Conn& c) {
  const bool out_pending = c.out_off < c.out.size();
  if (!out_pending && (c.close_after || c.read_eof)) {
    if (c.read_eof) {
      close_conn(c.fd);
      return;
    }
    // Lingering close: our FIN goes out after the response, input is drained until the peer's.
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    c.linger_since = Clock::now();
  }
  uint32_t want = 0;
  if (c.lingering ||
      (!c.read_eof && !c.close_after && c.in.size() < kMaxPendingIn &&
       c.out.size() - c.out_off < kMaxPendingOut)) {
    want |= EPOLLIN;
  }
  if (out_pending) want |= EPOLLOUT;
  if (want == 0 && !c.lingering && c.read_eof) {
    close_conn(c.fd);
    return;
  }
  if (want != c.events) {
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = c.fd;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
    c.events = want;
  }
  // Pipelined requests left unprocessed because too much output was pending: once it drains,
  // go on without waiting for new input (there may be none).
  if (!out_pending && !c.close_after && !c.in.empty() && !c.lingering) {
    process(c);
    if (c.out_off < c.out.size() || c.close_after) {
      if (!flush(c)) {
        close_conn(c.fd);
        return;
      }
      update(c);
    }
  }
}

void DemoServer::Impl::close_conn(int fd) {
  ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
  ::close(fd);
  conns.erase(fd);
}

DemoServer::DemoServer() = default;

DemoServer::~DemoServer() { stop(); }

bool DemoServer::start(uint16_t users_port, uint16_t products_port, std::string& error) {
  if (impl_) {
    error = "demo upstreams already started";
    return false;
  }
  auto impl = std::make_unique<Impl>();
  if (!listen_on(users_port, impl->listen_fd[0], ports_.users, error)) {
    error = "users: " + error;
    return false;
  }
  if (!listen_on(products_port, impl->listen_fd[1], ports_.products, error)) {
    error = "products: " + error;
    return false;
  }
  impl->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  impl->stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->epfd < 0 || impl->stop_fd < 0) {
    error = std::string("epoll/eventfd: ") + std::strerror(errno);
    return false;
  }
  for (int fd : {impl->listen_fd[0], impl->listen_fd[1], impl->stop_fd}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    if (::epoll_ctl(impl->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      error = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
  }
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->run(); });
  impl_ = std::move(impl);
  return true;
}

void DemoServer::stop() {
  if (!impl_) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t r = ::write(impl_->stop_fd, &one, sizeof(one));
  if (impl_->thread.joinable()) impl_->thread.join();
  impl_.reset();
}

bool start_demo_upstreams(uint16_t users_port, uint16_t products_port, DemoPorts& bound,
                          std::string& error) {
  // Lives until the process exits; the pointer keeps it reachable for leak checkers.
  static DemoServer* server = nullptr;
  if (server != nullptr) {
    error = "demo upstreams already started";
    return false;
  }
  auto s = std::make_unique<DemoServer>();
  if (!s->start(users_port, products_port, error)) return false;
  bound = s->ports();
  server = s.release();
  return true;
}

bool start_demo_upstreams(uint16_t users_port, uint16_t products_port, std::string& error) {
  DemoPorts bound;
  return start_demo_upstreams(users_port, products_port, bound, error);
}

}  // namespace ringway::demo
