// Helpers shared by the http unit tests: parse a whole head held in a std::string.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "ringway/http/parser.h"

namespace ringway::http::test {

// Parses the head at the start of `s`. The Request views point into `s`.
inline ParseStatus parse_request(RequestParser& parser, const std::string& s, Request& req) {
  const size_t n = find_head_end(s.data(), s.size());
  EXPECT_GT(n, 0u) << "no head end in: " << s;
  if (n == 0) return ParseStatus::kIncomplete;
  return parser.parse_head(s.data(), n, req);
}

inline ParseStatus parse_response(ResponseParser& parser, const std::string& s, Response& resp,
                                  bool was_head = false) {
  const size_t n = find_head_end(s.data(), s.size());
  EXPECT_GT(n, 0u) << "no head end in: " << s;
  if (n == 0) return ParseStatus::kIncomplete;
  return parser.parse_head(s.data(), n, was_head, resp);
}

}  // namespace ringway::http::test
