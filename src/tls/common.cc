// Policy shared by both ends (RFC 9325: TLS 1.2 and 1.3 only, forward secrecy, AEAD), and failure
// reasons for metrics: a fixed small vocabulary so that dashboards can alert on it; OpenSSL's own
// strings change between releases and sometimes carry peer-controlled text.
#include "common.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

namespace ringway::tls::detail {

std::string take_error_text() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(e);
  return reason != nullptr ? reason : "error " + std::to_string(ERR_GET_REASON(e));
}

bool apply_protocol_policy(SSL_CTX* ctx, Version min_version, const std::string& ciphers,
                           const std::string& ciphersuites, std::string& error) {
  SSL_CTX_set_min_proto_version(ctx, min_version == Version::kTls13 ? TLS1_3_VERSION
                                                                   : TLS1_2_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // Renegotiation is a DoS lever and a source of past CVEs; compression enables CRIME.
  // Server preference: a client offering a weak-but-allowed order still gets our first choice.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_CIPHER_SERVER_PREFERENCE);
  const std::string& list = ciphers.empty() ? std::string(kDefaultCiphers) : ciphers;
  if (SSL_CTX_set_cipher_list(ctx, list.c_str()) != 1) {
    ERR_clear_error();
    error = "invalid TLS 1.2 cipher list '" + list + "'";
    return false;
  }
  // Every TLS 1.2 cipher must be ECDHE with an AEAD: a configured list cannot reintroduce static
  // RSA key exchange (no forward secrecy) or CBC (Lucky13-style padding oracles).
  STACK_OF(SSL_CIPHER)* stack = SSL_CTX_get_ciphers(ctx);
  for (int i = 0; i < sk_SSL_CIPHER_num(stack); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(stack, i);
    if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any) continue;  // TLS 1.3 suites: key exchange apart
    if (SSL_CIPHER_get_kx_nid(c) != NID_kx_ecdhe || !SSL_CIPHER_is_aead(c)) {
      error = std::string("TLS 1.2 cipher '") + SSL_CIPHER_get_name(c) +
              "' is not allowed (ECDHE with AES-GCM or CHACHA20-POLY1305 only)";
      return false;
    }
  }
  const std::string& suites = ciphersuites.empty() ? std::string(kDefaultCiphersuites)
                                                   : ciphersuites;
  if (SSL_CTX_set_ciphersuites(ctx, suites.c_str()) != 1) {
    ERR_clear_error();
    error = "invalid TLS 1.3 ciphersuites '" + suites + "'";
    return false;
  }
  if (SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
    error = "cannot set ECDHE groups: " + take_error_text();
    return false;
  }
  SSL_CTX_set_max_send_fragment(ctx, 16 * 1024);
  return true;
}

bool load_cert_and_key(SSL_CTX* ctx, const std::string& cert, const std::string& key,
                       std::string& error) {
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    error = "cannot load certificate chain '" + cert + "': " + take_error_text();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot load private key '" + key + "': " + take_error_text();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "private key '" + key + "' does not match certificate '" + cert + "'";
    ERR_clear_error();
    return false;
  }
  return true;
}

std::string_view failure_reason(const SSL* ssl, unsigned long err) {
  const long verify = ssl != nullptr ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (verify != X509_V_OK && ERR_GET_REASON(err) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
    switch (verify) {
      case X509_V_ERR_HOSTNAME_MISMATCH:
      case X509_V_ERR_IP_ADDRESS_MISMATCH:
        return "hostname_mismatch";
      case X509_V_ERR_CERT_HAS_EXPIRED:
      case X509_V_ERR_CERT_NOT_YET_VALID:
        return "expired";
      case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
      case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
      case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
        return "unknown_ca";
      default:
        return "certificate_verify_failed";
    }
  }
  switch (ERR_GET_REASON(err)) {
    case 0:
      return "handshake_failed";
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
      return "certificate_verify_failed";
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_CIPHERS_AVAILABLE:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
      return "no_shared_cipher";
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
      return "protocol_version";
    case SSL_R_HTTP_REQUEST:
    case SSL_R_HTTPS_PROXY_REQUEST:
      return "http_request";  // plaintext HTTP sent to a TLS port
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_PACKET_LENGTH_TOO_LONG:
    case SSL_R_RECORD_LENGTH_MISMATCH:
    case SSL_R_ENCRYPTED_LENGTH_TOO_LONG:
    case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
    case SSL_R_UNEXPECTED_RECORD:
    case SSL_R_UNEXPECTED_MESSAGE:
    case SSL_R_LENGTH_MISMATCH:
    case SSL_R_BAD_PACKET_LENGTH:
    case SSL_R_BAD_LENGTH:
    case SSL_R_RECORD_TOO_SMALL:
    case SSL_R_BAD_RECORD_TYPE:
      return "bad_record";
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
      return "no_client_certificate";
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
      return "peer_unknown_ca";  // the peer refused our certificate chain
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
      return "peer_rejected_certificate";
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
      return "peer_handshake_failure";
    case SSL_R_NO_APPLICATION_PROTOCOL:
    case SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL:
      return "no_application_protocol";
    case SSL_R_RENEGOTIATION_MISMATCH:
    case SSL_R_NO_RENEGOTIATION:
      return "renegotiation_refused";
    default:
      return "handshake_failed";
  }
}

int verify_mode(ClientAuth a) {
  switch (a) {
    case ClientAuth::kNone: return SSL_VERIFY_NONE;
    case ClientAuth::kOptional: return SSL_VERIFY_PEER;
    case ClientAuth::kRequired: return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  return SSL_VERIFY_NONE;
}

}  // namespace ringway::tls::detail
