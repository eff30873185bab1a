// Socket addresses and upstream URLs. Names are resolved once, at load time, so that the data
// path never blocks on DNS; numeric addresses are tried first so that they never touch the
// resolver at all.
#include <arpa/inet.h>
#include <netdb.h>
#include <string.h>

#include "config/values.h"
#include "ringway/config/config.h"

namespace ringway::config {
namespace {

bool resolve(const std::string& host, uint16_t port, Address& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  const std::string service = std::to_string(port);
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  if (rc != 0) {
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res);
  }
  if (rc != 0 || res == nullptr) {
    error = "cannot resolve host '" + host + "': " + gai_strerror(rc);
    return false;
  }
  memcpy(&out.addr, res->ai_addr, res->ai_addrlen);
  out.len = static_cast<socklen_t>(res->ai_addrlen);
  freeaddrinfo(res);
  out.host = host;
  out.port = port;
  return true;
}

bool parse_port(std::string_view text, uint16_t& port, std::string& error) {
  uint64_t v = 0;
  std::string err;
  if (!detail::parse_count(text, 1, 65535, v, err)) {
    error = "invalid port '" + std::string(text) + "' (expected 1..65535)";
    return false;
  }
  port = static_cast<uint16_t>(v);
  return true;
}

// Splits "host:port", "[v6]:port", "host" (port optional when default_port != 0).
bool split_authority(std::string_view text, uint16_t default_port, std::string& host,
                     uint16_t& port, std::string& error) {
  std::string_view port_text;
  bool has_port = false;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) {
      error = "unterminated '[' in '" + std::string(text) + "'";
      return false;
    }
    host.assign(text.substr(1, close - 1));
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') {
        error = "unexpected text after ']' in '" + std::string(text) + "'";
        return false;
      }
      port_text = rest.substr(1);
      has_port = true;
    }
    if (host.empty()) {
      error = "empty IPv6 address in '" + std::string(text) + "'";
      return false;
    }
  } else {
    const size_t colon = text.rfind(':');
    if (colon != std::string_view::npos) {
      if (text.substr(0, colon).find(':') != std::string_view::npos) {
        error = "IPv6 addresses must be bracketed: '[::1]:8080', got '" + std::string(text) + "'";
        return false;
      }
      host.assign(text.substr(0, colon));
      port_text = text.substr(colon + 1);
      has_port = true;
    } else {
      host.assign(text);
    }
  }
  if (has_port) return parse_port(port_text, port, error);
  if (default_port == 0) {
    error = "missing port in '" + std::string(text) + "' (expected HOST:PORT)";
    return false;
  }
  port = default_port;
  return true;
}

}  // namespace

bool parse_host_port(const std::string& text, Address& out, std::string& error) {
  std::string host;
  uint16_t port = 0;
  if (!split_authority(text, 0, host, port, error)) return false;
  if (host.empty()) host = "0.0.0.0";  // ":8080" means every IPv4 interface
  return resolve(host, port, out, error);
}

namespace {
bool parse_target(const std::string& url, Target& out, bool defer, std::string& error) {
  constexpr std::string_view kHttp = "http://";
  constexpr std::string_view kHttps = "https://";
  const std::string_view text = url;
  auto has_scheme = [&](std::string_view scheme) {
    return text.size() >= scheme.size() && detail::ascii_iequals(text.substr(0, scheme.size()), scheme);
  };
  const bool tls = has_scheme(kHttps);
  if (!tls && !has_scheme(kHttp)) {
    error = "invalid upstream URL '" + url + "' (expected http[s]://HOST[:PORT][/PATH])";
    return false;
  }
  std::string_view rest = text.substr(tls ? kHttps.size() : kHttp.size());
  const size_t slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  if (authority.empty()) {
    error = "missing host in upstream URL '" + url + "'";
    return false;
  }
  if (authority.find('@') != std::string_view::npos) {
    error = "userinfo is not allowed in upstream URL '" + url + "'";
    return false;
  }
  for (unsigned char c : rest) {
    // The base path is prepended to forwarded request-targets verbatim, so it must be plain
    // visible ASCII, and a query or fragment would make the joined target meaningless.
    if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#') {
      error = "invalid character in upstream URL '" + url + "' (no query, fragment or spaces)";
      return false;
    }
  }
  std::string host;
  uint16_t port = 0;
  if (!split_authority(authority, tls ? 443 : 80, host, port, error)) {
    error = "upstream URL '" + url + "': " + error;
    return false;
  }
  if (host.empty()) {
    error = "missing host in upstream URL '" + url + "'";
    return false;
  }
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  Target t;
  if (!resolve(host, port, t.address, error)) {
    in6_addr probe;
    if (!defer || inet_pton(AF_INET, host.c_str(), &probe) == 1 || inet_pton(AF_INET6, host.c_str(), &probe) == 1) {
      return false;
    }
    t.resolve_error = std::move(error);  // a name: dns_refresh may still make it an instance
    error.clear();
    t.address = Address{};
    t.address.host = host;
    t.address.port = port;
  }
  t.authority.assign(authority);
  t.base_path.assign(path);
  t.tls = tls;
  out = std::move(t);
  return true;
}

}  // namespace

bool parse_target_url(const std::string& url, Target& out, std::string& error) {
  return parse_target(url, out, false, error);
}

bool parse_target_url_deferred(const std::string& url, Target& out, std::string& error) {
  return parse_target(url, out, true, error);
}

}  // namespace ringway::config
