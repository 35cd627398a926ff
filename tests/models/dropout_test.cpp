// models/dropout.h: the counter-based dropout keeps 1 − p of the elements,
// scales them by 1/(1 − p), sends gradients through the same mask, and its
// masks follow torch::manual_seed, not the thread count or the dtype.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ellm/models/dropout.h"

using namespace ellm;

TEST(FastDropout, KeepRateScaleAndIndependentNeighbours) {
  const int64_t n = 1 << 20;
  torch::manual_seed(1);
  torch::Tensor y = fast_dropout(torch::ones({n}), 0.1, true);
  torch::Tensor kept = y.ne(0);
  // Binomial(n, 0.9): standard deviation 0.0003 of the rate; 0.002 is > 6 sigma.
  EXPECT_NEAR(kept.to(torch::kDouble).mean().item<double>(), 0.9, 0.002);
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), torch::full({1}, 1.0f / 0.9f)));
  // Elements 2j and 2j+1 come from the two halves of one draw: they must be independent.
  torch::Tensor both_dropped = kept.view({n / 2, 2}).logical_not().all(1);
  EXPECT_NEAR(both_dropped.to(torch::kDouble).mean().item<double>(), 0.01, 0.0015);
  // Consecutive pairs too (neighbouring counters).
  torch::Tensor d = kept.logical_not().to(torch::kDouble);
  EXPECT_NEAR((d.narrow(0, 1, n - 1) * d.narrow(0, 0, n - 1)).mean().item<double>(), 0.01, 0.0015);
  // Other rates.
  for (double p : {0.02, 0.5}) {
    torch::Tensor k = fast_dropout(torch::ones({n}), p, true).ne(0).to(torch::kDouble);
    EXPECT_NEAR(k.mean().item<double>(), 1 - p, 0.003) << p;
  }
}

TEST(FastDropout, GradientUsesTheSameMask) {
  torch::manual_seed(2);
  torch::Tensor x = torch::randn({7, 33}).requires_grad_();
  torch::Tensor w = torch::randn({7, 33});
  torch::Tensor y = fast_dropout(x, 0.25, true);
  (y * w).sum().backward();
  torch::Tensor mask = y.detach().ne(0).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(y.detach(), x.detach() * mask / 0.75, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(x.grad(), w * mask / 0.75, 1e-6, 1e-7));
}

TEST(FastDropout, MasksFollowTheSeedNotThreadsOrDtype) {
  torch::Tensor x = torch::ones({3, 100000});
  torch::manual_seed(3);
  torch::Tensor a = fast_dropout(x, 0.1, true);
  torch::manual_seed(3);
  int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::Tensor b = fast_dropout(x, 0.1, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(a, b));
  torch::manual_seed(3);
  torch::Tensor c = fast_dropout(x.to(torch::kBFloat16), 0.1, true);
  EXPECT_EQ(c.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(c.ne(0), a.ne(0)));
  torch::Tensor next = fast_dropout(x, 0.1, true);  // the generator moved on: another mask
  EXPECT_FALSE(torch::equal(next, a));
}

TEST(FastDropout, IdentityOutsideTrainingAndEdgeRates) {
  torch::Tensor x = torch::randn({5, 4});
  EXPECT_TRUE(fast_dropout(x, 0.3, false).is_same(x));
  EXPECT_TRUE(fast_dropout(x, 0.0, true).is_same(x));
  EXPECT_TRUE(torch::equal(fast_dropout(x, 1.0, true), torch::zeros({5, 4})));
  torch::Tensor xd = torch::randn({4, 6}, torch::kDouble);
  torch::manual_seed(4);
  torch::Tensor yd = fast_dropout(xd, 0.5, true);
  EXPECT_EQ(yd.scalar_type(), torch::kDouble);
  EXPECT_TRUE(torch::allclose(yd, xd * yd.ne(0).to(torch::kDouble) * 2.0, 1e-15, 0));
}
