// Routes compiled into an immutable matcher: built once per config, then shared read-only by all
// workers. match() is allocation-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringway/config/config.h"
#include "ringway/http/request.h"

namespace ringway::route {

struct Match {
  const config::Route* route = nullptr;  // null: no route (404)
  uint32_t route_index = 0;              // index in Config::routes (for per-route state/metrics)
  std::string_view remainder;            // path after the prefix: "" or starting with '/'
};

class Router {
 public:
  explicit Router(const std::vector<config::Route>& routes);  // keeps pointers into routes
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Longest prefix whose host/method/header conditions all hold. A prefix that ends in '/' matches
  // any path starting with it; one that does not matches the path itself or paths continuing
  // with '/'. Host is compared without its port, case-insensitively.
  Match match(const http::Request& req) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringway::route
