#include "ellm/util/kernel_threads.h"

#include <ATen/Parallel.h>

#include <atomic>

namespace ellm {

int kernel_threads() {
  // One chunk per thread the split hands out; with grain 1 that is one per available thread.
  std::atomic<int> chunks{0};
  const int64_t n = at::get_num_threads();
  at::parallel_for(0, n, 1, [&](int64_t, int64_t) { chunks++; });
  return chunks.load();
}

}  // namespace ellm
