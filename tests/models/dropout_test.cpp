// models/dropout.h: the counter-based dropout keeps 1 − p of the elements,
// scales them by 1/(1 − p), sends gradients through the same mask, and its
// masks follow torch::manual_seed, not the thread count or the dtype; the kernels
// (src/models/kernels/dropout_*) follow their documented stream on every instruction set.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>

#include "ellm/models/dropout.h"
#include "../../src/models/kernels/dropout_kernel.h"

using namespace ellm;

namespace {

// The documented stream, written out plainly: element i kept iff the (i mod 2) half of
// splitmix64(seed + ⌊i/2⌋·golden) is ≥ threshold.
bool reference_keep(uint64_t seed, int64_t i, uint32_t threshold) {
  uint64_t z = seed + static_cast<uint64_t>(i / 2) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<uint32_t>(i % 2 ? z >> 32 : z) >= threshold;
}

}  // namespace

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

// Both instruction sets' kernels against the plain stream and each other, bit for bit: ranges
// that start at an even element inside a 16-lane step and end in a scalar tail, fp32 and bf16
// (kept values rounded to nearest even; NaN stays NaN when kept), and the backward's
// masked scaling.
TEST(FastDropout, KernelsFollowTheStreamOnEveryInstructionSet) {
  const int64_t n = 1000, begin = 6, end = 987;
  const uint64_t seed = 0x1234abcd5678ull;
  const uint32_t threshold = 0x40000000u;  // p = 1/4
  const float scale = 4.0f / 3.0f;
  torch::manual_seed(5);
  torch::Tensor x = torch::randn({n});
  x[100] = std::numeric_limits<float>::quiet_NaN();
  torch::Tensor xb = x.to(torch::kBFloat16);
  auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
  const kernels::DropoutKernels& chosen = kernels::dropout_kernels();
  struct Isa {
    const char* name;
    decltype(chosen.dropout_f32) f32;
    decltype(chosen.dropout_bf16) bf16;
    decltype(chosen.masked_scale_f32) ms_f32;
    decltype(chosen.masked_scale_bf16) ms_bf16;
  };
  for (const Isa& isa : {Isa{"generic", &kernels::generic::dropout_f32, &kernels::generic::dropout_bf16,
                             &kernels::generic::masked_scale_f32, &kernels::generic::masked_scale_bf16},
                         Isa{chosen.isa, chosen.dropout_f32, chosen.dropout_bf16, chosen.masked_scale_f32,
                             chosen.masked_scale_bf16}}) {
    SCOPED_TRACE(isa.name);
    torch::Tensor y = torch::full({n}, 7.0f), yb = torch::full({n}, 7.0f, torch::kBFloat16);
    std::vector<uint8_t> mask(n, 9), mask_b(n, 9);
    isa.f32(x.data_ptr<float>(), y.data_ptr<float>(), mask.data(), begin, end, seed, threshold, scale);
    isa.bf16(bits(xb), bits(yb), mask_b.data(), begin, end, seed, threshold, scale);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool inside = i >= begin && i < end;
      if (!inside) {  // nothing outside the range is touched
        ASSERT_EQ(mask[i], 9) << i;
        ASSERT_EQ(y[i].item<float>(), 7.0f) << i;
        ASSERT_EQ(yb[i].item<float>(), 7.0f) << i;
        continue;
      }
      const bool keep = reference_keep(seed, i, threshold);
      kept += keep;
      ASSERT_EQ(mask[i], keep) << i;
      ASSERT_EQ(mask_b[i], keep) << i;
      const float xi = x[i].item<float>();
      const float want = keep ? xi * scale : 0.0f;
      const float want_b = keep ? static_cast<float>(c10::BFloat16(static_cast<float>(xb[i].item<at::BFloat16>()) * scale)) : 0.0f;
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(y[i].item<float>())) << i;
        EXPECT_TRUE(std::isnan(yb[i].item<float>())) << i;
      } else {
        ASSERT_EQ(y[i].item<float>(), want) << i;
        ASSERT_EQ(yb[i].item<float>(), want_b) << i;
      }
    }
    EXPECT_NEAR(static_cast<double>(kept) / (end - begin), 0.75, 0.05);
    // The backward: g·scale where the mask is set, 0 elsewhere.
    torch::Tensor g = torch::randn({n}), gb = g.to(torch::kBFloat16);
    torch::Tensor dx = torch::full({n}, 7.0f), dxb = torch::full({n}, 7.0f, torch::kBFloat16);
    isa.ms_f32(g.data_ptr<float>(), mask.data(), dx.data_ptr<float>(), begin, end, scale);
    isa.ms_bf16(bits(gb), mask.data(), bits(dxb), begin, end, scale);
    for (int64_t i = begin; i < end; ++i) {
      ASSERT_EQ(dx[i].item<float>(), mask[i] ? g[i].item<float>() * scale : 0.0f) << i;
      ASSERT_EQ(dxb[i].item<float>(),
                mask[i] ? static_cast<float>(c10::BFloat16(static_cast<float>(gb[i].item<at::BFloat16>()) * scale)) : 0.0f)
          << i;
    }
    EXPECT_EQ(dx[end].item<float>(), 7.0f);
  }
}
