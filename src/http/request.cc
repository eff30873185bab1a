// Small helpers on the parsed views: field lookup, method names, idempotency.
#include "ringway/http/request.h"

#include "ringway/http/response.h"

namespace ringway::http {
namespace {

std::string_view find_header(const Header* headers, uint16_t count, std::string_view name,
                             bool* found) {
  for (uint16_t i = 0; i < count; ++i) {
    if (iequals(headers[i].name, name)) {
      if (found != nullptr) *found = true;
      return headers[i].value;
    }
  }
  if (found != nullptr) *found = false;
  return {};
}

}  // namespace


std::string_view Request::header(std::string_view name, bool* found) const {
  return find_header(headers, header_count, name, found);
}

std::string_view Response::header(std::string_view name, bool* found) const {
  return find_header(headers, header_count, name, found);
}

// Method names are case-sensitive (RFC 9110 9.1).
Method method_from_name(std::string_view name) {
  switch (name.size()) {
    case 3:
      if (name == "GET") return Method::kGet;
      if (name == "PUT") return Method::kPut;
      break;
    case 4:
      if (name == "HEAD") return Method::kHead;
      if (name == "POST") return Method::kPost;
      break;
    case 5:
      if (name == "PATCH") return Method::kPatch;
      if (name == "TRACE") return Method::kTrace;
      break;
    case 6:
      if (name == "DELETE") return Method::kDelete;
      break;
    case 7:
      if (name == "CONNECT") return Method::kConnect;
      if (name == "OPTIONS") return Method::kOptions;
      break;
    default:
      break;
  }
  return Method::kOther;
}

// RFC 9110 9.2.2: safe methods plus PUT and DELETE. Extension methods are assumed not to be.
bool is_idempotent(Method m) {
  switch (m) {
    case Method::kGet:
    case Method::kHead:
    case Method::kPut:
    case Method::kDelete:
    case Method::kOptions:
    case Method::kTrace:
      return true;
    default:
      return false;
  }
}

}  // namespace ringway::http
