// Private to src/tls: what the server and client contexts share (protocol versions, cipher
// policy, error text) and the mapping of handshake failures to the short stable reasons that
// metrics count. Pure functions over OpenSSL objects; any thread.
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include "ringway/tls/server_context.h"

namespace ringway::tls::detail {

// The reason text of the oldest queued OpenSSL error ("no such file", "key values mismatch"),
// and clears the queue. Never contains key material.
std::string take_error_text();

// Versions 1.2/1.3 only, ECDHE only, AEAD ciphers, no compression, no renegotiation. Both sides.
bool apply_protocol_policy(SSL_CTX* ctx, Version min_version, const std::string& ciphers,
                           const std::string& ciphersuites, std::string& error);

// Loads a PEM chain and its key into ctx. error names the file.
bool load_cert_and_key(SSL_CTX* ctx, const std::string& cert, const std::string& key,
                       std::string& error);

// SSL verify flags for a client-certificate policy: none asks for nothing; optional asks and
// verifies what comes; required also refuses a handshake without one (RFC 8446 4.4.2.4).
int verify_mode(ClientAuth a);

// The stable reason of a failed handshake or read: from the certificate verification result of
// this SSL, else from the OpenSSL error reason code err (ERR_GET_REASON of the first error).
std::string_view failure_reason(const SSL* ssl, unsigned long err);

}  // namespace ringway::tls::detail
