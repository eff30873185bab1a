// Start-up and shutdown. Shared state is built here once and never written again, except for
// the ready/draining atomics. Signals are blocked in every thread and taken synchronously by the
// main thread, which then asks each worker to drain.

#include "ringway/server/server.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <thread>

#include "ringway/filter/builtin.h"
#include "ringway/tls/kernel_tls.h"
#include "ringway/tls/server_context.h"
#include "server/worker.h"

namespace ringway::server {
namespace {

void pin_to_cpu(unsigned worker_index) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  // Pin to the n-th CPU this process may use (taskset-friendly).
  const int count = CPU_COUNT(&allowed);
  if (count <= 0) return;
  int want = static_cast<int>(worker_index % static_cast<unsigned>(count));
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (want-- == 0) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
      return;
    }
  }
}

}  // namespace

int run(const config::Config& cfg) {
  Shared shared;
  shared.cfg = &cfg;
  shared.router = std::make_unique<route::Router>(cfg.routes, cfg.aggregates);
  shared.clusters = std::make_unique<upstream::Clusters>(cfg);
  shared.traffic = upstream::build_traffic(*shared.clusters, cfg);
  shared.dns = std::make_unique<upstream::Dns>(*shared.clusters, cfg, *shared.traffic);
  if (std::string dns_error; !shared.dns->start(dns_error)) {  // before workers: first answers in
    std::fprintf(stderr, "ringway: %s\n", dns_error.c_str());
    return 2;
  }
  tls::ServerSettings tls_settings;
  if (!cfg.listen_tls.empty()) {
    tls_settings = tls::server_settings(cfg);
    std::string tls_error;
    std::shared_ptr<const tls::ServerContext> ctx = tls::ServerContext::build(tls_settings, tls_error);
    if (ctx == nullptr) {
      std::fprintf(stderr, "ringway: %s\n", tls_error.c_str());
      return 2;
    }
    shared.tls_server.store(ctx.get(), std::memory_order_release);
    shared.tls_contexts.push_back(std::move(ctx));
  }
  for (const config::Route& r : cfg.routes) {
    for (const config::Target& t : r.targets) {
      if (t.tls_settings != nullptr && !t.tls_settings->verify) {
        std::fprintf(stderr, "ringway: warning: upstream https://%s (route %s) is not verified "
                     "(\"verify\": false): anyone on the path can impersonate it\n",
                     t.authority.c_str(), r.prefix.c_str());
      }
    }
  }
  for (const config::NameValue& h : cfg.add_headers) shared.add_headers.push_back({h.name, h.value});
  std::string filter_error;
  if (!filter::build_builtin_filters(cfg, shared.filters, filter_error)) {
    std::fprintf(stderr, "ringway: %s\n", filter_error.c_str());
    return 2;
  }
  proxy::build_route_caches(cfg, shared.cache_stores, shared.route_caches);
  unsigned threads = cfg.threads;
  if (threads == 0) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    threads = n > 0 ? static_cast<unsigned>(n) : 1;
  }
  shared.worker_count = threads;
  std::vector<std::string> labels;
  for (const config::Route& r : cfg.routes) labels.push_back(r.prefix);
  for (const config::Aggregate& a : cfg.aggregates) labels.push_back(a.endpoint->path);
  obs::MetricsRegistry metrics(threads, std::move(labels));
  shared.metrics = &metrics;
  if (!cfg.listen_tls.empty()) metrics.enable_tls();
  if (cfg.has_redis) {  // cluster rate limits (issue 15): one Redis link per worker
    shared.redis_stats = std::make_unique<filter::RedisStats>();
    const filter::RedisStats* rs = shared.redis_stats.get();
    metrics.add_section([rs](std::string& out) { redis::render_redis_stats(*rs, out); });
  }

  if (cfg.access_log == "-") {
    shared.access_log_fd = STDOUT_FILENO;
  } else if (cfg.access_log != "off" && !cfg.access_log.empty()) {
    shared.access_log_fd = open(cfg.access_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (shared.access_log_fd < 0) {
      std::fprintf(stderr, "ringway: cannot open access log %s: %s\n", cfg.access_log.c_str(), std::strerror(errno));
      return 1;
    }
  }

  // Block the shutdown signals everywhere; the main thread takes them with sigwaitinfo().
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGUSR1);  // internal: a worker failed to start
  sigaddset(&set, SIGHUP);   // reload certificate files
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned i = 0; i < threads; ++i) workers.push_back(std::make_unique<Worker>(shared, i));
  for (auto& w : workers) shared.workers.push_back(w.get());
  std::vector<std::string> errors(threads);
  std::vector<std::thread> pool;
  const pthread_t main_thread = pthread_self();
  for (unsigned i = 0; i < threads; ++i) {
    pool.emplace_back([&, i] {
      pin_to_cpu(i);
      if (!workers[i]->run(errors[i])) pthread_kill(main_thread, SIGUSR1);
    });
  }

  for (const auto& a : cfg.listen) std::fprintf(stderr, "ringway: listening on %s:%u with %u workers\n", a.host.c_str(), a.port, threads);
  for (const auto& a : cfg.listen_tls) {
    std::fprintf(stderr, "ringway: listening on %s:%u (TLS) with %u workers\n", a.host.c_str(), a.port, threads);
  }
  if (!cfg.listen_tls.empty()) {
    // This kernel may lack the TLS ULP (CONFIG_TLS); records are then sealed in user space.
    std::fprintf(stderr, "ringway: TLS in user space (kernel TLS %s; not used yet)\n",
                 tls::kernel_tls_available() ? "available" : "not available");
  }
  if (cfg.has_admin) std::fprintf(stderr, "ringway: admin on %s:%u\n", cfg.admin_listen.host.c_str(), cfg.admin_listen.port);

  int sig = 0;
  // Session-ticket keys rotate on this thread, every ticket lifetime (tls/server_context.h).
  for (;;) {
    timespec wait{static_cast<time_t>(tls_settings.ticket_lifetime_s), 0};
    sig = sigtimedwait(&set, nullptr, &wait);
    if (sig == SIGHUP) {
      // New handshakes use the new files; open connections keep theirs (each SSL holds its
      // SSL_CTX). A bad file keeps the old certificates.
      if (shared.tls_contexts.empty()) continue;
      std::string error;
      auto next = tls::ServerContext::reload(*shared.tls_contexts.back(), tls_settings, error);
      metrics.count_tls_reload(next != nullptr);
      if (next == nullptr) {
        std::fprintf(stderr, "ringway: certificate reload failed, keeping the old certificates: %s\n",
                     error.c_str());
        continue;
      }
      shared.tls_server.store(next.get(), std::memory_order_release);
      shared.tls_contexts.push_back(std::move(next));
      std::fprintf(stderr, "ringway: certificates reloaded\n");
      continue;
    }
    if (sig > 0) break;
    if (!shared.tls_contexts.empty()) shared.tls_contexts.back()->ticket_keys()->rotate();
  }
  int code = 0;
  if (sig == SIGUSR1) code = 1;
  shared.draining.store(true, std::memory_order_release);
  for (auto& w : workers) w->wake();
  for (auto& t : pool) t.join();
  for (unsigned i = 0; i < threads; ++i) {
    if (!errors[i].empty()) {
      std::fprintf(stderr, "ringway: worker %u: %s\n", i, errors[i].c_str());
      code = 1;
    }
  }
  if (shared.access_log_fd > STDOUT_FILENO) close(shared.access_log_fd);
  if (code == 0) std::fprintf(stderr, "ringway: drained, exiting\n");
  return code;
}

}  // namespace ringway::server
