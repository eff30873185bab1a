// A worker's inbox for work that other threads hand it: any thread posts an item, the owning
// worker runs it on its own thread when its wake eventfd fires (kOpWake, Worker::post). Used by
// the response cache to resume exchanges that waited for another worker's fill; generic, so other
// features may post too. A mutex around a vector: posts are rare (one per waiter per fill) and the
// lock covers one push or one swap, never the items' work.
#pragma once

#include <functional>
#include <mutex>
#include <utility>
#include <vector>

namespace ringway::server {

class Mailbox {
 public:
  using Item = std::function<void()>;
  // Any thread.
  void push(Item item) {
    std::lock_guard lock(mu_);
    items_.push_back(std::move(item));
  }
  // The owner's thread: runs what was posted so far (items posted meanwhile wait for their wake).
  void drain() {
    {
      std::lock_guard lock(mu_);
      batch_.swap(items_);
    }
    for (Item& item : batch_) item();
    batch_.clear();
  }

 private:
  std::mutex mu_;
  std::vector<Item> items_;
  std::vector<Item> batch_;  // owner only
};

}  // namespace ringway::server
