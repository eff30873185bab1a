// Built-in demo upstreams for `ringway --demo`: two small JSON HTTP/1.1 services, "users" and
// "products", on 127.0.0.1, served by ONE background thread (epoll, non-blocking sockets) that
// the DemoServer owns. Not the data path: it allocates freely, but it is a correct keep-alive,
// pipelining HTTP/1.1 server built on http::RequestParser.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace ringway::demo {

struct DemoPorts {
  uint16_t users = 0;
  uint16_t products = 0;
};

// Largest request body accepted (Content-Length or chunked); larger gets 413.
inline constexpr uint64_t kDemoMaxBody = 1024 * 1024;

class DemoServer {
 public:
  DemoServer();
  ~DemoServer();  // stop()
  DemoServer(const DemoServer&) = delete;
  DemoServer& operator=(const DemoServer&) = delete;

  // Binds 127.0.0.1 on both ports (0 picks an ephemeral port) and starts the thread.
  // False with a message (e.g. "users: bind 127.0.0.1:8001: Address in use") on failure.
  bool start(uint16_t users_port, uint16_t products_port, std::string& error);
  // The bound ports, valid after a successful start().
  DemoPorts ports() const { return ports_; }
  // Stops the thread and closes every socket. Idempotent; called by the destructor.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DemoPorts ports_;
};

// Starts a DemoServer that runs until the process exits (what `ringway --demo` uses).
bool start_demo_upstreams(uint16_t users_port, uint16_t products_port, std::string& error);
// Same, reporting the bound ports (for port 0).
bool start_demo_upstreams(uint16_t users_port, uint16_t products_port, DemoPorts& bound,
                          std::string& error);

}  // namespace ringway::demo
