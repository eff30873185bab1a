// The resolver thread of upstream/dns.h: c-ares (Debian 12: 1.18) on one thread, a blocking
// select() loop of its own so that no worker ever waits on DNS. Each name is looked up every
// min(TTL, dns_refresh); the answer is mapped onto the name's slots so that an address still in
// the answer keeps its slot (its pooled connections and health state stay), gone ones are marked
// absent and new ones take free slots. A failed or empty lookup keeps the last good set.
#include "ringway/upstream/dns.h"

#include <arpa/inet.h>
#include <ares.h>
#include <pthread.h>
#include <signal.h>
#include <sys/select.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "ringway/upstream/traffic.h"

namespace ringway::upstream {
namespace {

uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSecond + static_cast<uint64_t>(ts.tv_nsec);
}

DnsAddress make_address(const sockaddr* sa, socklen_t len, uint16_t port) {
  DnsAddress a;
  memcpy(&a.addr, sa, len);
  a.len = len;
  char host[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.addr);
    in->sin_port = htons(port);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.addr);
    in6->sin6_port = htons(port);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
  }
  // snprintf, not string appends: GCC 12 warns falsely (-Wrestrict, PR 105329) on those here.
  char text[INET6_ADDRSTRLEN + 8];
  std::snprintf(text, sizeof text, sa->sa_family == AF_INET ? "%s:%u" : "[%s]:%u", host, port);
  a.text = std::string(text);
  return a;
}

bool same(const DnsAddress& a, const DnsAddress& b) {
  return a.len == b.len && memcmp(&a.addr, &b.addr, a.len) == 0;
}

struct Lookup {
  Dns* dns;
  Dns::Name* name;
};

void on_answer(void* arg, int status, int /*timeouts*/, ares_addrinfo* res) {
  std::unique_ptr<Lookup> l(static_cast<Lookup*>(arg));
  if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION) {  // shutting down
    if (res != nullptr) ares_freeaddrinfo(res);
    l->name->pending = false;
    return;
  }
  std::vector<DnsAddress> found;
  uint32_t ttl = 0;
  if (status == ARES_SUCCESS && res != nullptr) {
    for (ares_addrinfo_node* n = res->nodes; n != nullptr; n = n->ai_next) {
      if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
      DnsAddress a = make_address(n->ai_addr, n->ai_addrlen, l->name->port);
      if (std::none_of(found.begin(), found.end(), [&](const DnsAddress& f) { return same(f, a); })) {
        found.push_back(std::move(a));
      }
      if (n->ai_ttl > 0 && (ttl == 0 || static_cast<uint32_t>(n->ai_ttl) < ttl)) ttl = n->ai_ttl;
    }
  }
  if (res != nullptr) ares_freeaddrinfo(res);
  const char* failure = status != ARES_SUCCESS ? ares_strerror(status) : (found.empty() ? "no addresses" : nullptr);
  l->dns->apply(*l->name, found, ttl, failure);
}

}  // namespace

Dns::Dns(const Clusters& clusters, const config::Config& cfg, Traffic& traffic)
    : cfg_(cfg), traffic_(traffic) {
  const size_t n = clusters.instances().size();
  slots_ = std::make_unique<std::atomic<const DnsAddress*>[]>(n);
  is_slot_.assign(n, false);
  for (size_t ri = 0; ri < cfg.routes.size(); ++ri) {
    const Cluster& c = clusters.route(static_cast<uint32_t>(ri));
    for (uint32_t i = c.first; i < c.first + c.size; ++i) {
      const config::Target& t = clusters.instance(i);
      if (!t.dns) continue;
      is_slot_[i] = true;
      if (t.dns_slot == 0) {
        Name nm;
        nm.host = t.address.host;
        nm.port = t.address.port;
        nm.first = i;
        nm.interval_ms = cfg.routes[ri].traffic.dns_refresh_ms;
        names_.push_back(std::move(nm));
      }
      ++names_.back().count;
      // The start-time answer (if the system resolver knew the name) fills slot 0.
      const bool filled = t.dns_slot == 0 && t.address.len != 0;
      if (filled) {
        store_.push_back(make_address(reinterpret_cast<const sockaddr*>(&t.address.addr), t.address.len, t.address.port));
        slots_[i].store(&store_.back(), std::memory_order_release);
      }
      traffic_.host(i).present.store(filled ? 1 : 0, std::memory_order_release);
    }
  }
}

Dns::~Dns() {
  stop();
  if (channel_ != nullptr) ares_destroy(static_cast<ares_channel>(channel_));
}

void Dns::apply(Name& n, const std::vector<DnsAddress>& found, uint32_t ttl_s, const char* failure) {
  n.pending = false;
  lookups_.fetch_add(1, std::memory_order_relaxed);
  uint64_t wait_ms = n.interval_ms;
  if (ttl_s != 0 && ttl_s * 1000ull < wait_ms) wait_ms = ttl_s * 1000ull;
  n.next_ns = now_ns() + wait_ms * 1'000'000ull;
  if (failure != nullptr) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    if (!n.failing) {  // once per failure streak
      std::fprintf(stderr, "ringway: dns: lookup of '%s' failed (%s); keeping the last good addresses\n",
                   n.host.c_str(), failure);
    }
    n.failing = true;
    return;
  }
  if (n.failing) std::fprintf(stderr, "ringway: dns: '%s' resolves again\n", n.host.c_str());
  n.failing = false;
  std::vector<bool> used(found.size(), false);
  std::vector<uint32_t> empty, gone;
  for (uint32_t i = n.first; i < n.first + n.count; ++i) {
    const DnsAddress* cur = slots_[i].load(std::memory_order_relaxed);
    if (traffic_.host(i).present.load(std::memory_order_relaxed) == 0 || cur == nullptr) {
      empty.push_back(i);
      continue;
    }
    size_t k = 0;
    while (k < found.size() && (used[k] || !same(found[k], *cur))) ++k;
    if (k < found.size()) {
      used[k] = true;  // still answered: keeps its slot, pool and health state
    } else {
      gone.push_back(i);
    }
  }
  // New addresses take empty slots first, then the slots of gone ones (a new pointer while the
  // slot stays present); only then do leftover gone slots go absent. So a change from A to B
  // never leaves a moment with no present slot, and a pick never finds the name empty.
  size_t next_empty = 0, next_gone = 0;
  for (size_t k = 0; k < found.size(); ++k) {
    if (used[k]) continue;
    uint32_t i;
    if (next_empty < empty.size()) {
      i = empty[next_empty++];
    } else if (next_gone < gone.size()) {
      i = gone[next_gone++];
      std::fprintf(stderr, "ringway: dns: %s no longer has %s\n", n.host.c_str(),
                   slots_[i].load(std::memory_order_relaxed)->text.c_str());
    } else {
      break;  // more addresses than slots (dns_max_addresses)
    }
    store_.push_back(found[k]);  // a new pointer: the slot's new generation
    slots_[i].store(&store_.back(), std::memory_order_release);
    traffic_.host(i).present.store(1, std::memory_order_release);
    std::fprintf(stderr, "ringway: dns: %s now has %s\n", n.host.c_str(), found[k].text.c_str());
  }
  for (; next_gone < gone.size(); ++next_gone) {
    const uint32_t i = gone[next_gone];
    traffic_.host(i).present.store(0, std::memory_order_release);
    std::fprintf(stderr, "ringway: dns: %s no longer has %s\n", n.host.c_str(),
                 slots_[i].load(std::memory_order_relaxed)->text.c_str());
  }
}

bool Dns::start(std::string& error) {
  if (names_.empty()) return true;
  int rc = ares_library_init(ARES_LIB_INIT_ALL);
  if (rc != ARES_SUCCESS) {
    error = std::string("dns: ") + ares_strerror(rc);
    return false;
  }
  ares_options opts{};
  opts.timeout = 1000;  // ms per try: bounds how long a dead server delays the next round
  opts.tries = 2;
  ares_channel ch = nullptr;
  rc = ares_init_options(&ch, &opts, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
  if (rc != ARES_SUCCESS) {
    error = std::string("dns: ") + ares_strerror(rc);
    return false;
  }
  channel_ = ch;
  if (cfg_.has_dns_server) {
    ares_addr_port_node node{};
    const sockaddr_storage& ss = cfg_.dns_server.addr;
    node.family = ss.ss_family;
    if (ss.ss_family == AF_INET) {
      node.addr.addr4 = reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr;
    } else {
      memcpy(&node.addr.addr6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, sizeof node.addr.addr6);
    }
    node.udp_port = node.tcp_port = cfg_.dns_server.port;
    rc = ares_set_servers_ports(ch, &node);
    if (rc != ARES_SUCCESS) {
      error = std::string("dns: --dns-server: ") + ares_strerror(rc);
      return false;
    }
  }
  resolve_round(true);  // the first answers before any worker takes a request
  // The main thread takes the shutdown signals with sigwaitinfo(); this thread must not.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return true;
}

void Dns::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stopping_.store(true, std::memory_order_relaxed);
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Dns::resolve_round(bool all) {
  auto ch = static_cast<ares_channel>(channel_);
  const uint64_t now = now_ns();
  bool any = false;
  for (Name& n : names_) {
    if (n.pending || (!all && n.next_ns > now)) continue;
    n.pending = true;
    any = true;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(ch, n.host.c_str(), nullptr, &hints, on_answer, new Lookup{this, &n});
  }
  // c-ares' own event loop until every lookup answered (or timed out: its tries bound this).
  for (;;) {
    fd_set r, w;
    FD_ZERO(&r);
    FD_ZERO(&w);
    const int nfds = ares_fds(ch, &r, &w);
    if (nfds == 0) break;
    if (stopping_.load(std::memory_order_relaxed)) {
      ares_cancel(ch);  // shutting down: a dead server must not hold the exit for its timeouts
      break;
    }
    timeval cap{0, 100'000};  // look at stopping_ at least every 100 ms
    timeval tv{};
    timeval* tvp = ares_timeout(ch, &cap, &tv);
    select(nfds, &r, &w, nullptr, tvp);
    ares_process(ch, &r, &w);
  }
  return any;
}

void Dns::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    uint64_t soonest = UINT64_MAX;
    for (const Name& n : names_) soonest = std::min(soonest, n.next_ns);
    const uint64_t now = now_ns();
    if (soonest > now) {
      cv_.wait_for(lock, std::chrono::nanoseconds(soonest - now));
      continue;
    }
    lock.unlock();
    resolve_round(false);
    lock.lock();
  }
}

}  // namespace ringway::upstream
