#include "ellm/serve/batcher.h"

#include <gtest/gtest.h>

#include <atomic>

using namespace ellm;
using namespace std::chrono_literals;

TEST(Batcher, GroupsConcurrentRequestsAndKeepsOrder) {
  std::atomic<size_t> largest{0};
  Batcher<int, int> b(
      [&](std::vector<int>& xs) {
        largest = std::max(largest.load(), xs.size());
        std::vector<int> out;
        for (int x : xs) out.push_back(x * 10);
        return out;
      },
      8, 100, 50ms);
  std::vector<std::future<int>> fs;
  for (int i = 0; i < 20; ++i) fs.push_back(b.submit(i));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fs[i].get(), i * 10);
  EXPECT_GT(largest.load(), 1u);
  EXPECT_LE(largest.load(), 8u);
  EXPECT_EQ(b.items_run(), 20u);
}

TEST(Batcher, FullQueueFailsFast) {
  std::promise<void> release;
  auto gate = release.get_future().share();
  Batcher<int, int> b(
      [gate](std::vector<int>& xs) {
        gate.wait();
        return xs;
      },
      1, 2, 1ms);
  auto first = b.submit(1);  // taken by the worker, which blocks
  std::this_thread::sleep_for(50ms);
  auto a = b.submit(2), c = b.submit(3);  // fill the queue of 2
  EXPECT_THROW(b.submit(4), QueueFull);
  release.set_value();
  EXPECT_EQ(first.get(), 1);
  EXPECT_EQ(a.get(), 2);
  EXPECT_EQ(c.get(), 3);
}

TEST(Batcher, HandlerErrorsReachEveryCaller) {
  Batcher<int, int> b([](std::vector<int>&) -> std::vector<int> { throw std::runtime_error("model failed"); }, 4, 10, 1ms);
  auto f = b.submit(1);
  EXPECT_THROW(f.get(), std::runtime_error);
}

TEST(Batcher, StopDrainsQueuedWork) {
  Batcher<int, int> b([](std::vector<int>& xs) { return xs; }, 2, 100, 20ms);
  std::vector<std::future<int>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back(b.submit(i));
  b.stop();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(fs[i].get(), i);
  EXPECT_THROW(b.submit(1), std::runtime_error);
}
