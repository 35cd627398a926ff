// ellm's own kernels (at::parallel_for in its sources) get every intra-op thread.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "ellm/util/kernel_threads.h"

TEST(IntraOpThreads, EllmKernelsRunOnEveryIntraOpThread) {
  // Fails when ellm's sources are built without -fopenmp: at::parallel_for then compiles to
  // a serial loop whatever at::get_num_threads() says.
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(ellm::kernel_threads(), 2);
  at::set_num_threads(before);
}
