// Which TLS client context an https:// upstream connects through (issue 13): its own, when the
// JSON config gave it "tls" settings (a CA, a client certificate, verify false), else the
// worker's shared one. Both are built per worker in Worker::setup, so the lookup never fails.
#include "server/worker.h"

namespace ringway::server {

tls::ClientContext& Worker::tls_client_for(const config::Target& t) {
  if (t.tls_settings != nullptr) return *tls_clients_.at(t.tls_settings.get());
  return *tls_client_;
}

}  // namespace ringway::server
