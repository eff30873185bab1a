// Test-only PKI: a root CA, an intermediate, server certificates (RSA and ECDSA, SNI names, a
// wildcard, a CN-only one, an expired one, a self-signed one) and a client certificate, made with
// the OpenSSL API into a temporary directory when the test binary first asks. No key is committed.
#pragma once

#include <string>

namespace ringway::tls::test {

struct Pki {
  std::string dir;
  std::string ca;                  // root CA certificate (trust anchor)
  std::string other_ca;            // an unrelated root, trusted by nobody here
  std::string rsa_cert, rsa_key;   // RSA leaf for a.test and www.a.test, signed by the root
  std::string ec_cert, ec_key;     // ECDSA leaf for b.test, chain: leaf + intermediate
  std::string rsa_b_cert, rsa_b_key;  // RSA leaf for b.test too (dual certificates)
  std::string wild_cert, wild_key; // ECDSA leaf for *.w.test
  std::string cn_cert, cn_key;     // no SAN, CN=cn.test
  std::string expired_cert, expired_key;  // a.test, expired yesterday
  std::string self_cert, self_key;        // a.test, self-signed
  std::string client_cert, client_key;    // CN=client-one, signed by the root
  std::string other_client_cert, other_client_key;  // CN=intruder, signed by other_ca
};

const Pki& pki();

}  // namespace ringway::tls::test
