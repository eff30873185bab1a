// A client connection: a Conn plus where it is in the HTTP/1.1 conversation, its request parser
// and the exchange it is serving. Owned by one worker; its exchange is owned by the same worker
// and lives at most until the connection's next request starts.
#pragma once

#include <netinet/in.h>

#include <cstdint>
#include <memory>
#include <string_view>

#include "ringway/http/parser.h"
#include "ringway/net/conn.h"

namespace ringway::proxy {
struct Exchange;
}  // namespace ringway::proxy

namespace ringway::net {

enum class DownState : uint8_t {
  kIdle,        // between requests, waiting for the first byte
  kHead,        // part of a request head received
  kExchange,    // a request is being forwarded or answered
  kLingering,   // our side is shut for writing; reading until the client closes (or a timeout)
};

// Which timeout Conn::timer runs for.
enum class TimerKind : uint8_t { kNone, kHeader, kKeepAlive, kBody, kConnect, kResponse, kLinger,
                                 kPaused /* a filter deciding; as long as kResponse */ };

struct DownstreamConn : Conn {
  bool admin = false;           // accepted on the admin listener
  bool abort = false;           // close with RST
  bool deadline_armed = false;  // an aggregate's io_uring timeout is in flight (counted in pending)
  bool send_queued = false;     // a response send waits for that flush
  bool deliver_queued = false;  // plaintext the transport holds is to be delivered by the loop
  DownState state = DownState::kIdle;
  TimerKind timer_kind = TimerKind::kNone;
  proxy::Exchange* ex = nullptr;  // the exchange in progress (HTTP/2 would make this a list)
  std::unique_ptr<http::RequestParser> parser;
  char client_ip[INET6_ADDRSTRLEN] = {};
  uint8_t client_ip_len = 0;
  std::string_view ip() const { return {client_ip, client_ip_len}; }
};

}  // namespace ringway::net
