// TLS visibility on client connections (issue 13): each connection's handshake is counted once
// in /metrics, as completed (by version, resumed or not) or failed (by the session's stable
// reason, or "timeout" / "closed" when the engine gave up or the client left mid-handshake);
// the access log gets the session's version, cipher, SNI and resumption.
#include "server/worker.h"

namespace ringway::server {

void Worker::note_client_tls(DownstreamConn& c, net::RecvResult r) {
  tls::Session& s = *c.transport.session();
  if (s.established()) {
    if (s.mark_counted()) {
      const tls::Session::Info i = s.info(false);
      metrics_->count_tls_handshake(i.version == "TLSv1.3", i.resumed);
    }
  } else if (r == net::RecvResult::kError && s.mark_counted()) {
    metrics_->count_tls_failure(s.failure().empty() ? "handshake_failed" : s.failure());
  }
}

void Worker::note_client_tls_closed(DownstreamConn& c, bool timed_out) {
  tls::Session& s = *c.transport.session();
  if (s.established() || !s.mark_counted()) return;
  if (!s.failure().empty()) {
    metrics_->count_tls_failure(s.failure());
  } else {
    metrics_->count_tls_failure(timed_out ? "timeout" : "closed");
  }
}

void Worker::describe_tls(const DownstreamConn& c, obs::AccessRecord& r) {
  const tls::Session::Info i = c.transport.session()->info(false);
  r.tls_version = i.version;
  r.tls_cipher = i.cipher;
  r.tls_sni = i.sni;
  r.tls_resumed = i.resumed;
}

}  // namespace ringway::server
