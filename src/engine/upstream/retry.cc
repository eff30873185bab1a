// Failure kinds and statuses to retry causes: the one classification (failure.h) names what
// happened; this says which of the config's "on" words covers it.
#include "ringway/upstream/retry.h"

namespace ringway::upstream {

uint8_t retry_cause(FailureKind k) {
  switch (k) {
    case FailureKind::kNoSocket:
    case FailureKind::kConnectRefused:
    case FailureKind::kConnectFailed:
    case FailureKind::kConnectTimeout:
      return kRetryConnectFailure;
    case FailureKind::kClosedBeforeResponse:
    case FailureKind::kResetBeforeResponse:
      return kRetryReset;
    case FailureKind::kResponseTimeout:
      return kRetryTimeout;
    // Part of the response may already be with the client, or the upstream spoke nonsense (that
    // connection is never reused, but a retry would not fix a broken upstream): not retried.
    case FailureKind::kClosedMidResponse:
    case FailureKind::kHeadTooLarge:
    case FailureKind::kInvalidHead:
    case FailureKind::kInvalidBody:
    case FailureKind::kBodyTooLarge:
    case FailureKind::kDeadline:
      return 0;
    // A certificate or handshake failure is the upstream's configuration: another try of the
    // same instance fails the same way (a different instance is the balancer's business).
    case FailureKind::kTlsHandshake:
    case FailureKind::kTlsUntrusted:
    case FailureKind::kTlsName:
    case FailureKind::kTlsExpired:
      return 0;
    case FailureKind::kCircuitOpen:  // overload protection: retrying would defeat it
      return 0;
  }
  return 0;
}

uint8_t retry_cause_status(uint16_t status) {
  switch (status) {
    case 502: return kRetry502;
    case 503: return kRetry503;
    case 504: return kRetry504;
    default: return 0;
  }
}

}  // namespace ringway::upstream
