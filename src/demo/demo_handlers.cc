#include "demo_handlers.h"

#include <simdjson.h>

#include <charconv>

#include "ringway/core/json_escape.h"

namespace ringway::demo {

namespace {

struct User {
  uint64_t id;
  const char* name;
  const char* email;
};
struct Product {
  uint64_t id;
  const char* name;
  const char* price;  // JSON number text
};

constexpr User kUsers[] = {
    {1, "Ada Lovelace", "ada@example.com"},
    {2, "Alan Turing", "alan@example.com"},
    {3, "Grace Hopper", "grace@example.com"},
};
constexpr Product kProducts[] = {
    {1, "Mechanical keyboard", "89.90"},
    {2, "USB-C cable", "9.50"},
    {3, "27-inch monitor", "329.00"},
};

std::string_view reason(uint16_t status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 505: return "HTTP Version Not Supported";
    case 501: return "Not Implemented";
    default: return status < 500 ? "Bad Request" : "Internal Server Error";
  }
}

void append_u64(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof(buf), v).ptr);
}

void append_nullable(std::string& out, bool present, std::string_view v) {
  if (present) {
    core::append_json_string(out, v);
  } else {
    out += "null";
  }
}

// keep_alive: whether the connection stays open after this response.
void write_response(std::string& out, Service svc, const DemoRequest* req, uint16_t status,
                    std::string_view body, bool keep_alive, std::string_view extra_headers = {}) {
  out += "HTTP/1.1 ";
  append_u64(out, status);
  out += ' ';
  out += reason(status);
  out += "\r\nContent-Type: application/json\r\nContent-Length: ";
  append_u64(out, body.size());
  out += "\r\nX-Demo-Service: ";
  out += service_name(svc);
  out += "\r\n";
  out += extra_headers;
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (req != nullptr && req->http10) {
    // RFC 9112 section 9.3: an HTTP/1.0 client only keeps the connection if told so.
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  // HEAD: same header section, no content (RFC 9110 section 9.3.2).
  if (req == nullptr || req->method != "HEAD") out += body;
}

void append_received(std::string& out, const DemoRequest& req) {
  out += "\"received\":{\"method\":";
  core::append_json_string(out, req.method);
  out += ",\"path\":";
  core::append_json_string(out, req.path);
  out += ",\"query\":";
  append_nullable(out, req.has_query, req.query);
  out += ",\"x_forwarded_for\":";
  append_nullable(out, req.has_x_forwarded_for, req.x_forwarded_for);
  out += ",\"x_gateway\":";
  append_nullable(out, req.has_x_gateway, req.x_gateway);
  out += '}';
}

void append_user(std::string& out, const User& u) {
  out += "{\"id\":";
  append_u64(out, u.id);
  out += ",\"name\":";
  core::append_json_string(out, u.name);
  out += ",\"email\":";
  core::append_json_string(out, u.email);
}

void append_product(std::string& out, const Product& p) {
  out += "{\"id\":";
  append_u64(out, p.id);
  out += ",\"name\":";
  core::append_json_string(out, p.name);
  out += ",\"price\":";
  out += p.price;
}

// "/42" -> 42. Only plain decimal ids; anything else is not an item path.
bool parse_id(std::string_view path, uint64_t& id) {
  if (path.size() < 2 || path[0] != '/') return false;
  const std::string_view digits = path.substr(1);
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  return r.ec == std::errc() && r.ptr == digits.data() + digits.size();
}

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

bool is_json_object(std::string_view body) {
  thread_local simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body.data(), body.size()).get(doc) != simdjson::SUCCESS) return false;
  return doc.type() == simdjson::dom::element_type::OBJECT;
}

bool create_user(const DemoRequest& req, DemoState& state, std::string& out) {
  const std::string_view obj = trim(req.body);
  std::string body;
  if (!is_json_object(obj)) {
    body = "{\"error\":\"the body must be a JSON object\",\"status\":400}";
    write_response(out, Service::kUsers, &req, 400, body, req.keep_alive);
    return req.keep_alive;
  }
  // The object is valid JSON, so it is '{' members '}': put the id first, then the members.
  const std::string_view members = trim(obj.substr(1, obj.size() - 2));
  body = "{\"id\":";
  append_u64(body, state.next_user_id++);
  if (!members.empty()) {
    body += ',';
    body += members;
  }
  body += '}';
  write_response(out, Service::kUsers, &req, 201, body, req.keep_alive);
  return req.keep_alive;
}

}  // namespace

std::string_view service_name(Service s) {
  return s == Service::kUsers ? "users" : "products";
}

bool handle_request(Service svc, const DemoRequest& req, DemoState& state, std::string& out) {
  const bool get = req.method == "GET" || req.method == "HEAD";
  std::string body;
  uint64_t id = 0;

  if (req.path == "/") {
    if (get) {
      body = "[";
      if (svc == Service::kUsers) {
        for (const User& u : kUsers) {
          if (body.size() > 1) body += ',';
          append_user(body, u);
          body += '}';
        }
      } else {
        for (const Product& p : kProducts) {
          if (body.size() > 1) body += ',';
          append_product(body, p);
          body += '}';
        }
      }
      body += ']';
      write_response(out, svc, &req, 200, body, req.keep_alive);
      return req.keep_alive;
    }
    if (req.method == "POST" && svc == Service::kUsers) return create_user(req, state, out);
    body = "{\"error\":\"method not allowed\",\"status\":405}";
    write_response(out, svc, &req, 405, body, req.keep_alive,
                   svc == Service::kUsers ? "Allow: GET, HEAD, POST\r\n" : "Allow: GET, HEAD\r\n");
    return req.keep_alive;
  }

  if (parse_id(req.path, id)) {
    if (!get) {
      body = "{\"error\":\"method not allowed\",\"status\":405}";
      write_response(out, svc, &req, 405, body, req.keep_alive, "Allow: GET, HEAD\r\n");
      return req.keep_alive;
    }
    bool found = false;
    if (svc == Service::kUsers) {
      for (const User& u : kUsers) {
        if (u.id == id) {
          append_user(body, u);
          found = true;
        }
      }
    } else {
      for (const Product& p : kProducts) {
        if (p.id == id) {
          append_product(body, p);
          found = true;
        }
      }
    }
    if (found) {
      body += ',';
      append_received(body, req);
      body += '}';
      write_response(out, svc, &req, 200, body, req.keep_alive);
      return req.keep_alive;
    }
  }

  body = "{\"error\":\"not found\",\"status\":404,\"service\":";
  core::append_json_string(body, service_name(svc));
  body += ',';
  append_received(body, req);
  body += '}';
  write_response(out, svc, &req, 404, body, req.keep_alive);
  return req.keep_alive;
}

void write_error(Service svc, uint16_t status, std::string_view detail, std::string& out) {
  std::string body = "{\"error\":";
  core::append_json_string(body, detail);
  body += ",\"status\":";
  append_u64(body, status);
  body += '}';
  write_response(out, svc, nullptr, status, body, false);
}

bool decode_chunked(std::string_view raw, std::string& out) {
  size_t pos = 0;
  for (;;) {
    uint64_t size = 0;
    const char* begin = raw.data() + pos;
    auto r = std::from_chars(begin, raw.data() + raw.size(), size, 16);
    if (r.ec != std::errc()) return false;
    // Skip chunk extensions up to the end of the size line.
    const size_t eol = raw.find('\n', static_cast<size_t>(r.ptr - raw.data()));
    if (eol == std::string_view::npos) return false;
    pos = eol + 1;
    if (size == 0) return true;  // trailer fields follow; they are ignored
    if (size > raw.size() - pos) return false;
    out.append(raw.data() + pos, size);
    pos += size;
    if (raw.substr(pos, 2) != "\r\n") return false;
    pos += 2;
  }
}

}  // namespace ringway::demo
