// Counts global operator new calls made by this thread between start() and stop() (test only).
#pragma once

#include <cstddef>

namespace alloc_counter {
void start();
size_t stop();
}  // namespace alloc_counter
