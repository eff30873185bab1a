// Kernel TLS probe, for the startup line and /metrics. No kTLS data path exists: this machine's
// kernel has no TLS ULP, so nothing built on it could be run or tested here (issue 13).
#pragma once

namespace ringway::tls {

// True when setsockopt(TCP_ULP, "tls") succeeds on a connected loopback TCP socket (it fails
// with ENOENT when the kernel has no "tls" module). Opens and closes three sockets; call once.
bool kernel_tls_available();

}  // namespace ringway::tls
