// The one classification of upstream failures, shared by forwarded exchanges, aggregate legs and
// (later) health probes: what went wrong maps to the status the client gets, the problem+json
// detail, the /metrics counter, and whether the request may be tried again on a new connection.
// Pure data; any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "ringway/obs/metrics.h"

namespace ringway::upstream {

enum class FailureKind : uint8_t {
  kNoSocket,             // socket() failed (descriptors exhausted)
  kConnectRefused,       // ECONNREFUSED on connect, or before any response byte
  kConnectFailed,        // any other connect error
  kConnectTimeout,
  kClosedBeforeResponse, // EOF before a response byte
  kResetBeforeResponse,  // an error before a response byte
  kClosedMidResponse,    // EOF or error after the head, before the framed end
  kResponseTimeout,
  kHeadTooLarge,
  kInvalidHead,
  kInvalidBody,
  kBodyTooLarge,         // an aggregate leg's body over its limit
  kDeadline,             // an aggregate's deadline passed before this leg answered
  kTlsHandshake,         // the TLS handshake with the upstream failed (protocol, cipher, alert)
  kTlsUntrusted,         // its certificate does not chain to a trusted CA
  kTlsName,              // its certificate does not name the host in the upstream URL
  kTlsExpired,           // its certificate (or one in its chain) has expired
  kCircuitOpen,          // the instance's circuit breaker refused a connection (issue 14)
};

struct Failure {
  uint16_t status;                  // what the client gets (502, 503, 504)
  std::string_view detail;          // problem+json detail: static text, no secrets
  bool counted;                     // counted in ringway_upstream_errors_total
  obs::UpstreamErrorKind metric;    // which series, when counted
  // RFC 9110 9.2.2: no response byte came back, so the upstream may never have seen the request
  // (typically it closed an idle keep-alive connection as we reused it): an idempotent request,
  // or one whose bytes all fit in what was lost, may go to a new connection.
  bool before_response;
};

const Failure& describe(FailureKind k);

// An errno (negative, as io_uring reports it) or 0 (EOF) from a connection whose response had
// (head_done) or had not begun.
FailureKind classify_io(int err, bool head_done);
// A connect completion's error.
FailureKind classify_connect(int err);
// A failed TLS handshake, by the session's short reason (tls::Session::failure()).
FailureKind classify_tls(std::string_view reason);

}  // namespace ringway::upstream
