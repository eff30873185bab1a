// ringway: the process entry point. Loads and validates the configuration, starts the built-in
// demo upstreams if asked, and hands over to server::run().

#include <mimalloc.h>

#include <cstdio>
#include <string>

#include "ringway/config/config.h"
#include "ringway/demo/demo_upstreams.h"
#include "ringway/filter/builtin.h"
#include "ringway/server/server.h"
#include "ringway/tls/self_signed.h"

namespace {

// Routes /api/users/ and /api/products/ to the demo services on their (ephemeral) ports.
bool add_demo_routes(ringway::config::Config& cfg, const ringway::demo::DemoPorts& ports,
                     std::string& error) {
  const std::pair<const char*, uint16_t> demo[] = {{"/api/users/", ports.users},
                                                    {"/api/products/", ports.products}};
  for (const auto& [prefix, port] : demo) {
    ringway::config::Route r;
    r.prefix = prefix;
    ringway::config::Target t;
    if (!ringway::config::parse_target_url("http://127.0.0.1:" + std::to_string(port), t, error)) {
      return false;
    }
    r.targets.push_back(std::move(t));
    cfg.routes.push_back(std::move(r));
  }
  return true;
}

// --demo over HTTPS too (issue 13): on --listen-tls if given, else on 8443 next to the default
// 8080 listener, with a throwaway self-signed certificate unless --tls-cert names one. Returns
// the https:// base URL for the hints ("" when no TLS listener is served).
std::string add_demo_https(ringway::config::Config& cfg, ringway::tls::SelfSigned& made,
                           std::string& error) {
  if (cfg.listen_tls.empty()) {
    if (cfg.listen.size() != 1 || cfg.listen.front().port != 8080) return "";
    ringway::config::Address a;
    const std::string& h = cfg.listen.front().host;
    const std::string host = h.find(':') != std::string::npos ? "[" + h + "]" : h;
    if (!ringway::config::parse_host_port(host + ":8443", a, error)) return "";
    cfg.listen_tls.push_back(std::move(a));
    cfg.listen_tls_client_auth.emplace_back();
  }
  if (cfg.tls_certs.empty()) {
    if (!ringway::tls::make_self_signed(made, error)) return "";
    cfg.tls_certs.push_back(ringway::config::TlsCertFiles{made.cert, made.key});
  }
  const auto& l = cfg.listen_tls.front();
  const std::string host = l.host == "0.0.0.0" || l.host == "127.0.0.1" ? "localhost" : l.host;
  return "https://" + host + ":" + std::to_string(l.port);
}

}  // namespace

int main(int argc, char** argv) {
  ringway::config::LoadResult loaded = ringway::config::load(argc, argv);
  if (loaded.exit_now) return 0;
  if (!loaded.ok) {
    std::fprintf(stderr, "ringway: %s\n", loaded.error.c_str());
    return 2;
  }
  ringway::config::Config& cfg = loaded.config;
  if (cfg.test_only) {
    // Build the filters too: -t must catch what start-up would (bad specs, unreadable keys).
    std::vector<std::unique_ptr<ringway::filter::FilterFactory>> filters;
    std::string error;
    if (!ringway::filter::build_builtin_filters(cfg, filters, error)) {
      std::fprintf(stderr, "ringway: %s\n", error.c_str());
      return 2;
    }
    std::printf("ringway: configuration OK (%zu routes, mimalloc %d)\n", cfg.routes.size(), mi_version());
    return 0;
  }
  ringway::demo::DemoServer demo;
  ringway::tls::SelfSigned demo_cert;
  if (cfg.demo) {
    std::string error;
    if (!demo.start(0, 0, error) || !add_demo_routes(cfg, demo.ports(), error)) {
      std::fprintf(stderr, "ringway: demo: %s\n", error.c_str());
      return 1;
    }
    const std::string https = add_demo_https(cfg, demo_cert, error);
    if (!error.empty()) {
      std::fprintf(stderr, "ringway: demo: %s\n", error.c_str());
      return 1;
    }
    const auto& l = cfg.listen.front();
    const std::string base = "http://" + (l.host == "0.0.0.0" ? std::string("127.0.0.1") : l.host) +
                             ":" + std::to_string(l.port);
    std::fprintf(stderr,
                 "ringway: demo upstreams: users on 127.0.0.1:%u, products on 127.0.0.1:%u\n"
                 "Try:\n"
                 "  curl -i %s/api/users/\n"
                 "  curl -i '%s/api/users/1?verbose=1'\n"
                 "  curl -i -X POST -H 'Content-Type: application/json' -d '{\"name\":\"Grace\"}' %s/api/users/\n"
                 "  curl -i %s/api/products/\n"
                 "  curl -i %s/nowhere   # 404 problem+json from the gateway\n",
                 demo.ports().users, demo.ports().products, base.c_str(), base.c_str(), base.c_str(),
                 base.c_str(), base.c_str());
    if (!https.empty() && !demo_cert.cert.empty()) {
      std::fprintf(stderr, "  curl -i --cacert %s %s/api/users/   # HTTPS, throwaway certificate\n",
                   demo_cert.cert.c_str(), https.c_str());
    } else if (!https.empty()) {
      std::fprintf(stderr, "  curl -i %s/api/users/   # HTTPS\n", https.c_str());
    }
  }
  const int rc = ringway::server::run(cfg);
  demo_cert.remove();
  return rc;
}
