// Test helper for the cache tests: real request and response heads from exact header text, parsed
// by the gateway's own parsers, so every rule is checked against what the engine will hand over.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>

#include "ringway/http/parser.h"

namespace ringway::cache::test {

class Heads {
 public:
  // "GET /a HTTP/1.1\r\nHost: h\r\n" + fields (each "Name: value", CRLF added).
  const http::Request& request(std::string_view method, std::string_view target,
                               std::initializer_list<std::string_view> fields) {
    std::string s = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\nHost: example.com\r\n";
    for (auto f : fields) s.append(f).append("\r\n");
    s.append("\r\n");
    texts_.push_back(std::move(s));
    auto& req = *requests_.emplace_back(std::make_unique<http::Request>());
    http::RequestParser parser(limits_);
    const std::string& t = texts_.back();
    const size_t n = http::find_head_end(t.data(), t.size());
    EXPECT_EQ(parser.parse_head(t.data(), n, req), http::ParseStatus::kDone) << t;
    return req;
  }
  const http::Request& get(std::initializer_list<std::string_view> fields) {
    return request("GET", "/a", fields);
  }
  const http::Response& response(int status, std::initializer_list<std::string_view> fields) {
    std::string s = "HTTP/1.1 " + std::to_string(status) + " X\r\n";
    for (auto f : fields) s.append(f).append("\r\n");
    if (status != 304 && status != 204) s.append("Content-Length: 0\r\n");
    s.append("\r\n");
    texts_.push_back(std::move(s));
    auto& resp = *responses_.emplace_back(std::make_unique<http::Response>());
    http::ResponseParser parser(limits_);
    const std::string& t = texts_.back();
    const size_t n = http::find_head_end(t.data(), t.size());
    EXPECT_EQ(parser.parse_head(t.data(), n, false, resp), http::ParseStatus::kDone) << t;
    return resp;
  }

 private:
  http::Limits limits_;
  std::deque<std::string> texts_;
  std::deque<std::unique_ptr<http::Request>> requests_;
  std::deque<std::unique_ptr<http::Response>> responses_;
};

}  // namespace ringway::cache::test
