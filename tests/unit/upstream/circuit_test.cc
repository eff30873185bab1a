#include "ringway/upstream/circuit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ringway::upstream {
namespace {

TEST(Circuit, AcquireUpToTheLimitThenReject) {
  CircuitCounters c;
  CircuitLimits l{.max_connections = 2, .max_pending = 1, .max_requests = 3};
  EXPECT_TRUE(try_acquire(c, l, CircuitResource::kConnection));
  EXPECT_TRUE(try_acquire(c, l, CircuitResource::kConnection));
  EXPECT_FALSE(try_acquire(c, l, CircuitResource::kConnection));
  EXPECT_TRUE(try_acquire(c, l, CircuitResource::kPending));
  EXPECT_FALSE(try_acquire(c, l, CircuitResource::kPending));
  EXPECT_EQ(c.rejected.load(), 2u);
  release(c, CircuitResource::kConnection);
  EXPECT_TRUE(try_acquire(c, l, CircuitResource::kConnection));
  EXPECT_EQ(c.load(CircuitResource::kConnection), 2u);
  EXPECT_EQ(c.load(CircuitResource::kRequest), 0u);
  CircuitLimits zero{.max_connections = 0};
  EXPECT_FALSE(try_acquire(c, zero, CircuitResource::kConnection));
}

// Four threads acquire and release the same counters: the value never passes the limit (the
// watcher samples it continuously) and returns to zero.
TEST(CircuitThreads, LimitsNeverOvershot) {
  CircuitCounters c;
  CircuitLimits l{.max_connections = 1, .max_pending = 2, .max_requests = 3};
  std::atomic<bool> stop{false};
  std::atomic<uint32_t> over{0};
  std::thread watcher([&] {
    while (!stop.load()) {
      if (c.load(CircuitResource::kConnection) > 1 || c.load(CircuitResource::kPending) > 2 ||
          c.load(CircuitResource::kRequest) > 3) {
        over.fetch_add(1);
      }
    }
  });
  std::atomic<uint64_t> ok{0};
  std::atomic<uint32_t> start{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      start.fetch_add(1);
      while (start.load() < 4) std::this_thread::yield();  // overlap as much as possible
      for (int i = 0; i < 100000; ++i) {
        // Take as many units as allowed plus one more attempt (so even a thread running alone
        // meets the limit), check, give them back.
        auto r = static_cast<CircuitResource>((i + t) % 3);
        uint32_t held = 0;
        while (held <= l.limit(r) && try_acquire(c, l, r)) {
          ++held;
          ok.fetch_add(1);
          if (c.load(r) > l.limit(r)) over.fetch_add(1);
        }
        std::this_thread::yield();  // hold them a moment, so the others meet the limit
        for (; held > 0; --held) release(c, r);
      }
    });
  }
  for (auto& t : ts) t.join();
  stop = true;
  watcher.join();
  EXPECT_EQ(over.load(), 0u);
  EXPECT_GT(ok.load(), 0u);
  EXPECT_GT(c.rejected.load(), 0u);
  EXPECT_EQ(c.load(CircuitResource::kConnection), 0u);
  EXPECT_EQ(c.load(CircuitResource::kPending), 0u);
  EXPECT_EQ(c.load(CircuitResource::kRequest), 0u);
}

}  // namespace
}  // namespace ringway::upstream
