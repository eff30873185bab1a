#include "ringway/upstream/failure.h"

#include <cerrno>

namespace ringway::upstream {
namespace {

using obs::UpstreamErrorKind;

constexpr Failure kTable[] = {
    // kNoSocket: the gateway's own limit, not the upstream's fault.
    {503, "no upstream connection available (out of sockets)", false, UpstreamErrorKind::kReset, true},
    {502, "upstream refused the connection", true, UpstreamErrorKind::kConnectRefused, true},
    {502, "upstream connect failed", true, UpstreamErrorKind::kReset, true},
    {504, "upstream connect timed out", true, UpstreamErrorKind::kConnectTimeout, true},
    {502, "upstream closed the connection before responding", true, UpstreamErrorKind::kReset, true},
    {502, "upstream connection failed before responding", true, UpstreamErrorKind::kReset, true},
    {502, "upstream closed the connection mid-response", true, UpstreamErrorKind::kReset, false},
    {504, "upstream response timed out", true, UpstreamErrorKind::kResponseTimeout, false},
    {502, "upstream response head too large", true, UpstreamErrorKind::kProtocol, false},
    {502, "upstream sent an invalid response", true, UpstreamErrorKind::kProtocol, false},
    {502, "upstream sent an invalid response body", true, UpstreamErrorKind::kProtocol, false},
    {502, "upstream response body larger than the leg limit", false, UpstreamErrorKind::kProtocol, false},
    {504, "the aggregate deadline passed before this leg answered", false,
     UpstreamErrorKind::kResponseTimeout, false},
    // A handshake failure is the upstream's configuration (or an attack), never retried blindly.
    {502, "upstream TLS handshake failed", true, UpstreamErrorKind::kProtocol, false},
    {502, "upstream certificate verify failed: not signed by a trusted CA", true,
     UpstreamErrorKind::kProtocol, false},
    {502, "upstream certificate verify failed: it does not name the upstream host", true,
     UpstreamErrorKind::kProtocol, false},
    {502, "upstream certificate verify failed: expired", true, UpstreamErrorKind::kProtocol, false},
    // The gateway's own limit (circuit_breaker.max_connections / max_pending): answered at once.
    {503, "upstream circuit breaker open: connection limit reached", false, UpstreamErrorKind::kReset, false},
};
static_assert(sizeof(kTable) / sizeof(kTable[0]) == static_cast<size_t>(FailureKind::kCircuitOpen) + 1,
              "one row per FailureKind, in order");

}  // namespace

const Failure& describe(FailureKind k) { return kTable[static_cast<size_t>(k)]; }

FailureKind classify_io(int err, bool head_done) {
  if (head_done) return FailureKind::kClosedMidResponse;
  if (err == -ECONNREFUSED) return FailureKind::kConnectRefused;
  return err == 0 ? FailureKind::kClosedBeforeResponse : FailureKind::kResetBeforeResponse;
}

FailureKind classify_connect(int err) {
  return err == -ECONNREFUSED ? FailureKind::kConnectRefused : FailureKind::kConnectFailed;
}

FailureKind classify_tls(std::string_view reason) {
  if (reason == "unknown_ca" || reason == "certificate_verify_failed") return FailureKind::kTlsUntrusted;
  if (reason == "hostname_mismatch") return FailureKind::kTlsName;
  if (reason == "expired") return FailureKind::kTlsExpired;
  return FailureKind::kTlsHandshake;
}

}  // namespace ringway::upstream
