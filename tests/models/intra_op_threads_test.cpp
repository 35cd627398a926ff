// IntraOpThreadsScope: the calling thread runs serially inside the scope, gets its count back
// after it, and another thread's count is not touched meanwhile.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <atomic>
#include <thread>

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
    // Work split by ATen runs on one thread inside the scope.
    std::atomic<int> chunks{0};
    at::parallel_for(0, 1 << 20, 1, [&](int64_t, int64_t) { chunks++; });
    EXPECT_EQ(chunks.load(), 1);
  }
  EXPECT_EQ(at::get_num_threads(), 2);
  at::set_num_threads(before);
}
