// Test helper: a client Session and a server Session joined in memory. Each direction is a
// std::string standing in for the socket; pump() moves what each side sealed to the other.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "ringway/tls/session.h"

namespace ringway::tls::test {

using Step = Session::Step;

struct Link {
  Session& client;
  Session& server;
  std::string to_server;  // ciphertext in flight client -> server
  std::string to_client;

  void pump() {
    auto move = [](Session& from, std::string& wire) {
      const auto out = from.output();
      wire.append(out.data(), out.size());
      from.output_sent(out.size());
    };
    move(client, to_server);
    move(server, to_client);
  }

  static Step drive(Session& s, std::string& wire) {
    Input in{wire.data(), wire.size()};
    const Step step = s.handshake(in);
    wire.erase(0, in.used);
    if (step == Step::kWantRead) {
      EXPECT_TRUE(wire.empty()) << wire.size() << " bytes left";
    }
    return step;
  }

  // Runs both handshakes to the end. True when both are established.
  bool handshake(Step* client_step = nullptr, Step* server_step = nullptr) {
    Step c = Step::kWantRead, s = Step::kWantRead;
    for (int round = 0; round < 50; ++round) {
      c = drive(client, to_client);
      pump();
      s = drive(server, to_server);
      pump();
      if (c == Step::kError || s == Step::kError) break;
      if (c == Step::kOk && s == Step::kOk) break;
    }
    if (client_step != nullptr) *client_step = c;
    if (server_step != nullptr) *server_step = s;
    return c == Step::kOk && s == Step::kOk;
  }

  // Reads all plaintext that `wire` holds for s (also processes post-handshake messages such as
  // TLS 1.3 tickets). Sets last to the step that ended the loop.
  static std::string read_all(Session& s, std::string& wire, Step* last = nullptr) {
    std::string out;
    char buf[5000];
    Step step = Step::kOk;
    while (true) {
      Input in{wire.data(), wire.size()};
      const ssize_t n = s.read(in, buf, sizeof buf, step);
      wire.erase(0, in.used);
      if (n > 0) {
        out.append(buf, static_cast<size_t>(n));
        continue;
      }
      // The contract the engine relies on to recycle receive buffers.
      if (step == Step::kWantRead) {
        EXPECT_TRUE(wire.empty()) << wire.size() << " bytes left";
      }
      break;
    }
    if (last != nullptr) *last = step;
    return out;
  }

  // Writes all of data from `from`, pumping whenever its output buffer is full.
  void write_all(Session& from, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      Step step;
      off += from.write(data.data() + off, data.size() - off, step);
      pump();
    }
  }
};

}  // namespace ringway::tls::test
