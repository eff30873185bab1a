// The probe needs an established TCP socket: the kernel attaches a ULP only to a connected socket
// (ENOTCONN otherwise), and answers ENOENT when the "tls" ULP is not built or loadable.
#include "ringway/tls/kernel_tls.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef TCP_ULP
#define TCP_ULP 31  // linux/tcp.h
#endif

namespace ringway::tls {

bool kernel_tls_available() {
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0) return false;
  int cfd = -1, afd = -1;
  bool ok = false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && listen(lfd, 1) == 0 &&
      getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (cfd >= 0 && connect(cfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      afd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
      ok = setsockopt(cfd, SOL_TCP, TCP_ULP, "tls", 3) == 0;
    }
  }
  if (afd >= 0) close(afd);
  if (cfd >= 0) close(cfd);
  close(lfd);
  return ok;
}

}  // namespace ringway::tls
