// Certificates for the TLS tests, built once per process. X509v3 extensions are added with
// X509V3_EXT_conf_nid so that the certificates look like what a real CA issues (basic
// constraints, SAN) and OpenSSL's verifier treats them as such.
#include "test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>

#include <stdexcept>
#include <vector>

namespace ringway::tls::test {
namespace {

EVP_PKEY* make_key(bool ec) { return ec ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048); }

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct Issued {
  X509* cert;
  EVP_PKEY* key;
};

// issuer == nullptr: self-signed.
Issued issue(bool ec, const std::string& cn, const std::vector<std::string>& sans,
             const Issued* issuer, bool is_ca, long from_s, long to_s) {
  static long serial = 1;
  EVP_PKEY* key = make_key(ec);
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), to_s);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ringway tests"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* issuer_cert = issuer != nullptr ? issuer->cert : cert;
  X509_set_issuer_name(cert, X509_get_subject_name(issuer_cert));
  add_ext(cert, issuer_cert, NID_basic_constraints, is_ca ? "critical,CA:TRUE" : "CA:FALSE");
  add_ext(cert, issuer_cert, NID_subject_key_identifier, "hash");
  if (is_ca) {
    add_ext(cert, issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, issuer_cert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
    add_ext(cert, issuer_cert, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (!sans.empty()) {
    std::string list;
    for (const std::string& s : sans) list += (list.empty() ? "DNS:" : ",DNS:") + s;
    add_ext(cert, issuer_cert, NID_subject_alt_name, list);
  }
  X509_sign(cert, issuer != nullptr ? issuer->key : key, EVP_sha256());
  return Issued{cert, key};
}

void write_certs(const std::string& path, std::initializer_list<X509*> certs) {
  FILE* f = fopen(path.c_str(), "w");
  for (X509* c : certs) PEM_write_X509(f, c);
  fclose(f);
}

void write_key(const std::string& path, EVP_PKEY* key) {
  FILE* f = fopen(path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  fclose(f);
}

constexpr long kDay = 86400;

Pki build() {
  Pki p;
  char tmpl[] = "/tmp/ringway_tls_pki_XXXXXX";
  if (mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
  p.dir = tmpl;
  auto path = [&](const char* name) { return p.dir + "/" + name; };
  Issued root = issue(true, "ringway test root", {}, nullptr, true, -kDay, 30 * kDay);
  Issued inter = issue(true, "ringway test intermediate", {}, &root, true, -kDay, 30 * kDay);
  Issued other = issue(true, "other root", {}, nullptr, true, -kDay, 30 * kDay);
  write_certs(p.ca = path("ca.pem"), {root.cert});
  write_certs(p.other_ca = path("other_ca.pem"), {other.cert});

  auto leaf = [&](const char* stem, bool ec, const std::string& cn,
                  const std::vector<std::string>& sans, const Issued* issuer,
                  std::initializer_list<X509*> chain, long from, long to, std::string& cert,
                  std::string& key) {
    Issued i = issue(ec, cn, sans, issuer, false, from, to);
    cert = path((std::string(stem) + ".pem").c_str());
    key = path((std::string(stem) + ".key").c_str());
    std::vector<X509*> all{i.cert};
    all.insert(all.end(), chain.begin(), chain.end());
    FILE* f = fopen(cert.c_str(), "w");
    for (X509* c : all) PEM_write_X509(f, c);
    fclose(f);
    write_key(key, i.key);
    X509_free(i.cert);
    EVP_PKEY_free(i.key);
  };
  leaf("rsa", false, "a.test", {"a.test", "www.a.test"}, &root, {}, -kDay, 30 * kDay, p.rsa_cert,
       p.rsa_key);
  leaf("ec", true, "b.test", {"b.test"}, &inter, {inter.cert}, -kDay, 30 * kDay, p.ec_cert,
       p.ec_key);
  leaf("rsa_b", false, "b.test", {"b.test"}, &root, {}, -kDay, 30 * kDay, p.rsa_b_cert,
       p.rsa_b_key);
  leaf("wild", true, "wildcard", {"*.w.test"}, &root, {}, -kDay, 30 * kDay, p.wild_cert,
       p.wild_key);
  leaf("cn", true, "cn.test", {}, &root, {}, -kDay, 30 * kDay, p.cn_cert, p.cn_key);
  leaf("expired", true, "a.test", {"a.test"}, &root, {}, -3 * kDay, -kDay, p.expired_cert,
       p.expired_key);
  leaf("self", true, "a.test", {"a.test"}, nullptr, {}, -kDay, 30 * kDay, p.self_cert,
       p.self_key);
  leaf("client", true, "client-one", {}, &root, {}, -kDay, 30 * kDay, p.client_cert,
       p.client_key);
  leaf("intruder", true, "intruder", {}, &other, {}, -kDay, 30 * kDay, p.other_client_cert,
       p.other_client_key);
  for (Issued* i : {&root, &inter, &other}) {
    X509_free(i->cert);
    EVP_PKEY_free(i->key);
  }
  return p;
}

}  // namespace

const Pki& pki() {
  static const Pki p = build();
  return p;
}

}  // namespace ringway::tls::test
