// IntraOpThreadsScope: the calling thread runs serially inside the scope, gets its count back
// after it, and another thread's count is not touched meanwhile.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <thread>

#include "ellm/util/kernel_threads.h"
#include "ellm/util/threads.h"

using ellm::IntraOpThreadsScope;

TEST(IntraOpThreads, ScopeIsSerialRestoresAndStaysOnItsThread) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  {
    IntraOpThreadsScope serial(1);
    EXPECT_EQ(at::get_num_threads(), 1);
    int other = 0;
    std::thread t([&] { other = at::get_num_threads(); });
    t.join();
    EXPECT_EQ(other, 2) << "another thread must keep the process-wide count";
    // Work split by ellm's kernels runs on one thread inside the scope.
    EXPECT_EQ(ellm::kernel_threads(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}

TEST(IntraOpThreads, EllmKernelsRunOnEveryIntraOpThread) {
  // Fails when ellm's sources are built without -fopenmp: at::parallel_for then compiles to
  // a serial loop whatever at::get_num_threads() says.
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(ellm::kernel_threads(), 2);
  at::set_num_threads(before);
}
