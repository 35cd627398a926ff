// small_linear (the decode-step linear kernels) against a float64 computation of x · wᵀ + b:
// every row count the kernels take, K with and without a tail past the vector width, N not a
// multiple of the row tile, rows with a stride, bias or none, fp32 and bf16; and the cases
// where it must step aside (gradients wanted, too many rows, mixed dtypes).
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "ellm/models/small_linear.h"
#include "../../src/models/kernels/small_linear_kernel.h"

using namespace ellm;

namespace {

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  torch::Tensor y = torch::matmul(d(x), d(w).t());
  return b.defined() ? y + d(b) : y;
}

}  // namespace

TEST(SmallLinear, MatchesFloat64ForEveryRowCountAndTail) {
  torch::InferenceMode guard;
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t K : {7, 16, 45, 64, 100, 300}) {
      for (int64_t N : {1, 5, 19}) {
        for (int64_t M = 1; M <= 8; ++M) {
          for (bool with_bias : {false, true}) {
            auto x = torch::randn({M, K}).to(dtype), w = torch::randn({N, K}).to(dtype);
            torch::Tensor b = with_bias ? torch::randn({N}).to(dtype) : torch::Tensor();
            torch::Tensor y = small_linear(x, w, b);
            if (!y.defined()) {  // bf16 takes only the rows its kernel is faster for
              EXPECT_EQ(dtype, torch::kBFloat16) << "M=" << M;
              continue;
            }
            ASSERT_EQ(y.scalar_type(), dtype);
            ASSERT_EQ(y.sizes(), (std::vector<int64_t>{M, N}));
            torch::Tensor ref = reference(x, w, b);
            // fp32: summation order only. bf16: inputs are exact in fp32, the result is rounded once.
            double tol = dtype == torch::kFloat32 ? 1e-5 * K : 0.0;
            torch::Tensor err = (y.to(torch::kFloat64) - ref).abs();
            torch::Tensor bound = dtype == torch::kFloat32 ? torch::full_like(ref, tol) : ref.abs() * (1.0 / 128) + 1e-3;
            EXPECT_TRUE((err <= bound).all().item<bool>())
                << c10::toString(dtype) << " M=" << M << " N=" << N << " K=" << K << " bias=" << with_bias
                << " max error " << err.max().item<double>();
          }
        }
      }
    }
  }
}

TEST(SmallLinear, KeepsLeadingShapeAndReadsStridedRows) {
  torch::InferenceMode guard;
  torch::manual_seed(4);
  // [B, 1, K] rows of a wider buffer: the last dim contiguous, rows 80 apart.
  auto wide = torch::randn({4, 1, 80});
  auto x = wide.narrow(-1, 0, 48);
  auto w = torch::randn({33, 48}), b = torch::randn({33});
  torch::Tensor y = small_linear(x, w, b);
  ASSERT_TRUE(y.defined());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{4, 1, 33}));
  EXPECT_TRUE(torch::allclose(y.to(torch::kFloat64), reference(x, w, b), 1e-5, 1e-4));
}

TEST(SmallLinear, SplitsColumnsAcrossThreadsWithTheSameResult) {
  torch::InferenceMode guard;
  torch::manual_seed(5);
  auto x = torch::randn({3, 256}), w = torch::randn({4099, 256}), b = torch::randn({4099});
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  torch::Tensor one = small_linear(x, w, b);
  torch::set_num_threads(2);
  torch::Tensor two = small_linear(x, w, b);
  torch::set_num_threads(threads);
  ASSERT_TRUE(one.defined() && two.defined());
  EXPECT_TRUE(torch::equal(one, two));  // each column is computed by one thread in one order
  EXPECT_TRUE(torch::allclose(one.to(torch::kFloat64), reference(x, w, b), 1e-5, 1e-3));
}

TEST(SmallLinear, Bf16RoundsToNearestEvenAndKeepsNaN) {
  torch::InferenceMode guard;
  // 1 + 2^-8 lies halfway between two bf16 values (1 and 1 + 2^-7): nearest even is 1.
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: nearest even is 1 + 2^-6.
  auto w = torch::ones({1, 1}).to(torch::kBFloat16);
  auto b = torch::tensor({1.0f}).to(torch::kBFloat16);
  auto run = [&](float v) {
    auto x = torch::tensor({{v}}).to(torch::kBFloat16);
    // x alone cannot hold 2^-8 next to 1, so the half step comes from the bias: x = 2^-8 exactly.
    return small_linear(x, w, b).to(torch::kFloat32).item<float>();
  };
  EXPECT_EQ(run(std::ldexp(1.0f, -8)), 1.0f);
  EXPECT_EQ(run(3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(run(std::numeric_limits<float>::quiet_NaN())));
}

TEST(SmallLinear, StepsAsideWhereItDoesNotApply) {
  torch::manual_seed(6);
  auto w = torch::randn({8, 16}), b = torch::randn({8});
  {
    torch::InferenceMode guard;
    EXPECT_FALSE(small_linear(torch::randn({9, 16}), w, b).defined());              // more rows than the kernel takes
    EXPECT_FALSE(small_linear(torch::randn({2, 16}).to(torch::kFloat64), w, b).defined());  // other dtype
    EXPECT_FALSE(small_linear(torch::randn({2, 16}), w.to(torch::kBFloat16), b).defined());  // mixed dtypes
    EXPECT_FALSE(small_linear(torch::randn({2, 16}), w.t().contiguous().t(), b).defined());   // w not row-major
    EXPECT_FALSE(small_linear(torch::randn({2, 15}), w, b).defined());               // K mismatch
  }
  auto wg = w.clone().requires_grad_(true);
  EXPECT_FALSE(small_linear(torch::randn({2, 16}), wg, b).defined());  // autograd wants the BLAS path
  EXPECT_FALSE(small_linear(torch::Tensor(), w, b).defined());
  EXPECT_STRNE(small_linear_isa(), "");
}

// Enough columns that the weight (3,000 × 64) is split over both intra-op threads.
TEST(SmallLinear, ColumnsSplitOverThreadsMatchTheReference) {
  torch::InferenceMode guard;
  torch::manual_seed(5);
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t M : {1, 8}) {
      auto x = torch::randn({M, 64}).to(dtype), w = torch::randn({3000, 64}).to(dtype);
      torch::Tensor y = small_linear(x, w, torch::Tensor());
      ASSERT_TRUE(y.defined()) << c10::toString(dtype) << " M=" << M;
      torch::Tensor ref = reference(x, w, torch::Tensor());
      torch::Tensor bound = dtype == torch::kFloat32 ? torch::full_like(ref, 1e-5 * 64) : ref.abs() * (1.0 / 128) + 1e-3;
      EXPECT_TRUE(((y.to(torch::kFloat64) - ref).abs() <= bound).all().item<bool>())
          << c10::toString(dtype) << " M=" << M;
    }
  }
  at::set_num_threads(before);
}

// The portable kernel (what a CPU without AVX-512 runs) against the one chosen here.
TEST(SmallLinear, PortableKernelAgreesWithTheChosenOne) {
  torch::manual_seed(7);
  for (int64_t M = 1; M <= 8; ++M) {
    const int64_t K = 77, N = 23;
    auto x = torch::randn({M, K}), w = torch::randn({N, K}), b = torch::randn({N});
    auto y = torch::empty({M, N});
    kernels::generic::small_linear_f32(x.data_ptr<float>(), K, M, K, w.data_ptr<float>(), b.data_ptr<float>(),
                                       y.data_ptr<float>(), N, 0, N);
    EXPECT_TRUE(torch::allclose(y.to(torch::kFloat64), reference(x, w, b), 1e-5, 1e-4)) << "fp32 M=" << M;

    auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
    auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16), bb = b.to(torch::kBFloat16);
    auto yb = torch::empty({M, N}, torch::kBFloat16);
    kernels::generic::small_linear_bf16(bits(xb), K, M, K, bits(wb), bits(bb), bits(yb), N, 0, N);
    torch::Tensor ref = reference(xb, wb, bb);
    EXPECT_TRUE(((yb.to(torch::kFloat64) - ref).abs() <= ref.abs() / 128 + 1e-3).all().item<bool>()) << "bf16 M=" << M;
  }
}
