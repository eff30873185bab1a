// Routes and aggregate endpoints compiled into one immutable matcher: built once per config,
// then shared read-only by all workers. match() says what a request is for (forward by a route,
// fan out to an aggregate, or nothing) and is allocation-free.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "ringway/agg/endpoint.h"
#include "ringway/config/config.h"
#include "ringway/http/request.h"

namespace ringway::route {

// What a request is for: a route to forward by, an aggregate endpoint to fan out, or nothing
// (404). Per-route state (filters, metrics) is numbered routes first, then aggregate endpoints:
// route_index = routes.size() + k for the k-th endpoint.
struct Match {
  const config::Route* route = nullptr;          // action: forward
  const config::Aggregate* aggregate = nullptr;  // action: aggregate
  uint32_t route_index = 0;
  std::string_view remainder;   // forward: path after the prefix, "" or starting with '/'
  bool found() const { return route != nullptr || aggregate != nullptr; }
};

class Router {
 public:
  // Keeps pointers into routes and aggregates.
  explicit Router(const std::vector<config::Route>& routes,
                  const std::vector<config::Aggregate>& aggregates = {});
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Aggregate endpoints first, in config order: the first whose pattern matches the path and
  // whose methods include the request's. Then routes: the longest prefix whose host/method/header
  // conditions all hold. A prefix that ends in '/' matches any path starting with it; one that
  // does not matches the path itself or paths continuing with '/'. Host is compared without its
  // port, case-insensitively.
  Match match(const http::Request& req) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ringway::route
