// The demo certificate: made in memory with OpenSSL, then written where tls::ServerContext (and
// a SIGHUP reload) read certificates from, files, so the demo takes the ordinary TLS path.
#include "ringway/tls/self_signed.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <memory>

#include "common.h"

namespace ringway::tls {
namespace {

struct Deleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
  void operator()(FILE* f) const { fclose(f); }
};
template <class T>
using Owned = std::unique_ptr<T, Deleter>;

bool add_ext(X509* x, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  Owned<X509_EXTENSION> ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  return ext != nullptr && X509_add_ext(x, ext.get(), -1) == 1;
}

bool write_pem(const std::string& path, mode_t mode, X509* cert, EVP_PKEY* key) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return false;
  Owned<FILE> f(fdopen(fd, "w"));
  if (f == nullptr) {
    ::close(fd);
    return false;
  }
  const int ok = cert != nullptr ? PEM_write_X509(f.get(), cert)
                                 : PEM_write_PrivateKey(f.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  return ok == 1 && fflush(f.get()) == 0;
}

}  // namespace

void SelfSigned::remove() const {
  if (!cert.empty()) unlink(cert.c_str());
  if (!key.empty()) unlink(key.c_str());
  if (!dir.empty()) rmdir(dir.c_str());
}

bool make_self_signed(SelfSigned& out, std::string& error) {
  ERR_clear_error();
  Owned<EVP_PKEY> key(EVP_EC_gen("P-256"));
  Owned<X509> x(X509_new());
  unsigned char serial[16];
  if (key == nullptr || x == nullptr || RAND_bytes(serial, sizeof serial) != 1) {
    error = "demo certificate: " + detail::take_error_text();
    return false;
  }
  serial[0] &= 0x7f;  // a positive serial (RFC 5280 4.1.2.2)
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  const bool serial_ok = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x.get())) != nullptr;
  BN_free(bn);
  X509_NAME* name = X509_get_subject_name(x.get());
  const bool ok =
      serial_ok && X509_set_version(x.get(), X509_VERSION_3) == 1 &&
      X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600) != nullptr &&
      X509_gmtime_adj(X509_getm_notAfter(x.get()), 30L * 24 * 3600) != nullptr &&
      X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("ringway demo"), -1, -1, 0) == 1 &&
      X509_set_issuer_name(x.get(), name) == 1 && X509_set_pubkey(x.get(), key.get()) == 1 &&
      add_ext(x.get(), NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") &&
      add_ext(x.get(), NID_basic_constraints, "critical,CA:FALSE") &&
      add_ext(x.get(), NID_key_usage, "critical,digitalSignature") &&
      add_ext(x.get(), NID_ext_key_usage, "serverAuth") &&
      X509_sign(x.get(), key.get(), EVP_sha256()) > 0;
  if (!ok) {
    error = "demo certificate: " + detail::take_error_text();
    return false;
  }
  const char* tmp = getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ringway-demo-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    error = "demo certificate: cannot create a directory under " + templ.substr(0, templ.rfind('/'));
    return false;
  }
  out.dir = templ;
  out.cert = templ + "/demo-cert.pem";
  out.key = templ + "/demo-key.pem";
  if (!write_pem(out.key, 0600, nullptr, key.get()) || !write_pem(out.cert, 0644, x.get(), nullptr)) {
    error = "demo certificate: cannot write " + out.dir;
    out.remove();
    return false;
  }
  return true;
}

}  // namespace ringway::tls
