// server/mailbox.h: items posted from any thread all run, once each, on the draining thread, and
// an item posted while a drain runs waits for the next drain.
#include "server/mailbox.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ringway::server {
namespace {

TEST(Mailbox, ItemsFromManyThreadsRunOnceOnTheDrainingThread) {
  Mailbox box;
  constexpr int kThreads = 4;
  constexpr int kEach = 2000;
  std::vector<int> seen(kThreads * kEach, 0);  // touched only by the draining (this) thread
  const std::thread::id owner = std::this_thread::get_id();
  bool wrong_thread = false;
  std::vector<std::thread> posters;
  for (int t = 0; t < kThreads; ++t) {
    posters.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        box.push([&, n = t * kEach + i] {
          if (std::this_thread::get_id() != owner) wrong_thread = true;
          ++seen[n];
        });
      }
    });
  }
  for (int rounds = 0; rounds < 1000; ++rounds) box.drain();  // drains while posts arrive
  for (std::thread& p : posters) p.join();
  box.drain();
  EXPECT_FALSE(wrong_thread);
  for (int n = 0; n < kThreads * kEach; ++n) ASSERT_EQ(seen[n], 1) << n;
}

TEST(Mailbox, AnItemPostedDuringADrainRunsAtTheNextOne) {
  Mailbox box;
  int runs = 0;
  box.push([&] {
    ++runs;
    box.push([&] { ++runs; });
  });
  box.drain();
  EXPECT_EQ(runs, 1);
  box.drain();
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace ringway::server
