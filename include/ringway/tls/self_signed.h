// A throwaway self-signed certificate for `ringway --demo` (issue 13): ECDSA P-256, valid for
// localhost, 127.0.0.1 and ::1 for 30 days, written as PEM files into a fresh private temporary
// directory. Called once by main() at start; the caller removes the files when it exits.
#pragma once

#include <string>

namespace ringway::tls {

struct SelfSigned {
  std::string dir;   // the mkdtemp(3) directory holding both files
  std::string cert;  // dir + "/demo-cert.pem"
  std::string key;   // dir + "/demo-key.pem" (mode 0600)
  void remove() const;  // unlinks both files and the directory; best effort
};

// False with a one-line error on failure (nothing is left behind then).
bool make_self_signed(SelfSigned& out, std::string& error);

}  // namespace ringway::tls
