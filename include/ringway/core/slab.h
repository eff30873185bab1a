// Objects recycled by index: a connection or exchange slot keeps its index for life (completions
// name it in their user_data, with a generation that moves on at each reuse), so slots are never
// freed while the owner runs, only put back on a free list. Single-threaded: one per worker.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace ringway::core {

// T has a `uint32_t index` member, set here once when the slot is created.
template <class T>
class Slab {
 public:
  // A free slot, or a new one (fresh = true: the caller sets up what lives as long as the slot).
  T& take(bool& fresh) {
    fresh = free_.empty();
    if (!fresh) {
      T& t = *all_[free_.back()];
      free_.pop_back();
      return t;
    }
    all_.push_back(std::make_unique<T>());
    T& t = *all_.back();
    t.index = static_cast<uint32_t>(all_.size() - 1);
    return t;
  }
  void give(T& t) { free_.push_back(t.index); }

  T& operator[](uint32_t index) { return *all_[index]; }
  // Every slot ever made, in use or free (for shutdown).
  const std::vector<std::unique_ptr<T>>& all() const { return all_; }

 private:
  std::vector<std::unique_ptr<T>> all_;
  std::vector<uint32_t> free_;
};

}  // namespace ringway::core
