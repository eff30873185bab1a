// Request handling of the demo services, apart from the sockets: a request in, one complete
// HTTP/1.1 response appended to a string out. Used only by the demo server thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ringway::demo {

enum class Service : uint8_t { kUsers, kProducts };

std::string_view service_name(Service s);

// What the demo service saw of one request (copied out of the input buffer).
struct DemoRequest {
  std::string method;
  std::string path;
  std::string query;
  bool has_query = false;
  std::string x_forwarded_for;
  bool has_x_forwarded_for = false;
  std::string x_gateway;
  bool has_x_gateway = false;
  std::string body;          // decoded
  bool keep_alive = true;    // from the request (version + Connection)
  bool http10 = false;
};

// Mutable state shared by both services (one thread only).
struct DemoState {
  uint64_t next_user_id = 4;
};

// Appends the response to req to out. Returns false if the connection must be closed after it.
bool handle_request(Service svc, const DemoRequest& req, DemoState& state, std::string& out);

// Appends an error response (JSON {"error","status"}) that closes the connection.
void write_error(Service svc, uint16_t status, std::string_view detail, std::string& out);

// Decodes a chunked body that the parser has already validated (RFC 9112 section 7.1):
// size [; ext] CRLF data CRLF ... 0 CRLF trailers CRLF. False if it is malformed after all.
bool decode_chunked(std::string_view raw, std::string& out);

}  // namespace ringway::demo
