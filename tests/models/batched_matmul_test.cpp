// batched_matmul: the item-parallel path against torch::matmul (values, and gradients in
// fp64), on the layouts attention hands it; and where it must defer to torch::matmul.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include "ellm/models/batched_matmul.h"
#include "../../src/models/kernels/small_gemm_kernel.h"

using ellm::batched_matmul;

namespace batched_matmul_test {

struct TwoThreads {  // the item-parallel path needs more than one intra-op thread
  int before = at::get_num_threads();
  TwoThreads() { at::set_num_threads(2); }
  ~TwoThreads() { at::set_num_threads(before); }
};

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace batched_matmul_test
using batched_matmul_test::TwoThreads;

TEST(BatchedMatmul, MatchesMatmulOnAttentionLayouts) {
  TwoThreads threads;
  torch::manual_seed(0);
  // q [B,KV,G*T,D] · kᵀ (a transposed view of [B,KV,S,D]), then probs · v: 4-d, 3 items per
  // thread pair, odd sizes; and a 3-d product whose left operand is a transposed view.
  auto q = torch::randn({2, 3, 10, 8}), k = torch::randn({2, 3, 7, 8}), v = torch::randn({2, 3, 7, 5});
  auto scores = batched_matmul(q, k.transpose(-1, -2));
  ASSERT_EQ(scores.sizes(), (torch::IntArrayRef{2, 3, 10, 7}));
  EXPECT_LT(batched_matmul_test::max_diff(scores, torch::matmul(q, k.transpose(-1, -2))), 1e-5);
  auto p = torch::softmax(scores, -1);
  EXPECT_LT(batched_matmul_test::max_diff(batched_matmul(p, v), torch::matmul(p, v)), 1e-5);
  auto a = torch::randn({5, 9, 4}).transpose(1, 2);  // [5,4,9], column-major items
  auto b = torch::randn({5, 9, 6});
  EXPECT_LT(batched_matmul_test::max_diff(batched_matmul(a, b), torch::matmul(a, b)), 1e-5);
  // Under InferenceMode the workers write into an inference tensor: allowed, same values.
  c10::InferenceMode inference;
  EXPECT_LT(batched_matmul_test::max_diff(batched_matmul(q, k.transpose(-1, -2)), scores.detach()), 1e-6);
}

TEST(BatchedMatmul, GradientsMatchMatmulInDouble) {
  TwoThreads threads;
  torch::manual_seed(1);
  auto q = torch::randn({2, 2, 6, 4}, torch::kDouble).requires_grad_(), k = torch::randn({2, 2, 5, 4}, torch::kDouble).requires_grad_();
  auto w = torch::randn({2, 2, 6, 5}, torch::kDouble);
  auto ours = torch::autograd::grad({(batched_matmul(q, k.transpose(-1, -2)) * w).sum()}, {q, k});
  auto ref = torch::autograd::grad({(torch::matmul(q, k.transpose(-1, -2)) * w).sum()}, {q, k});
  EXPECT_LT(batched_matmul_test::max_diff(ours[0], ref[0]), 1e-12);
  EXPECT_LT(batched_matmul_test::max_diff(ours[1], ref[1]), 1e-12);
  // Finite differences on one entry of each input.
  const double h = 1e-6;
  for (int which = 0; which < 2; ++which) {
    torch::NoGradGuard no_grad;
    auto x = which == 0 ? q : k;
    auto f = [&] { return (batched_matmul(q, k.transpose(-1, -2)) * w).sum().item<double>(); };
    auto entry = x.view({-1}).narrow(0, 7, 1);
    entry.add_(h);
    double up = f();
    entry.sub_(2 * h);
    double down = f();
    entry.add_(h);
    EXPECT_NEAR((up - down) / (2 * h), ours[which].reshape({-1})[7].item<double>(), 1e-6) << which;
  }
}

TEST(BatchedMatmul, DefersToMatmulWhereItemParallelDoesNotApply) {
  TwoThreads threads;
  torch::manual_seed(2);
  // bf16 (oneDNN's kernel), a single item, and mismatched leading dims (an error, named).
  auto a = torch::randn({4, 3, 8}).to(torch::kBFloat16), b = torch::randn({4, 8, 2}).to(torch::kBFloat16);
  EXPECT_TRUE(torch::equal(batched_matmul(a, b), torch::matmul(a, b)));
  auto a1 = torch::randn({1, 3, 8}), b1 = torch::randn({1, 8, 2});
  EXPECT_TRUE(torch::equal(batched_matmul(a1, b1), torch::matmul(a1, b1)));
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 8}), torch::randn({3, 8, 2})), c10::Error);
}

// fp32 items run on the small-GEMM kernel: every operand layout it reads in place or copies
// (a row- or column-major, b row-major with whole 32-column panels or not, b a transposed
// view), sizes around its 8-row tiles and 32-column panels, against float64.
TEST(BatchedMatmul, Fp32KernelMatchesFloat64AcrossLayouts) {
  TwoThreads two;
  torch::NoGradGuard no_grad;
  torch::manual_seed(21);
  for (int64_t M : {1, 9, 64}) {
    for (int64_t N : {1, 31, 64, 70}) {
      for (int64_t K : {1, 16, 65}) {
        for (bool a_t : {false, true}) {
          for (bool b_t : {false, true}) {
            torch::Tensor a = a_t ? torch::randn({3, K, M}).transpose(1, 2) : torch::randn({3, M, K});
            torch::Tensor b = b_t ? torch::randn({3, N, K}).transpose(1, 2) : torch::randn({3, K, N});
            torch::Tensor ref = torch::matmul(a.to(torch::kDouble), b.to(torch::kDouble));
            torch::Tensor bound = torch::matmul(a.to(torch::kDouble).abs(), b.to(torch::kDouble).abs()) * 1e-6 + 1e-6;
            torch::Tensor err = (batched_matmul(a, b).to(torch::kDouble) - ref).abs();
            EXPECT_TRUE((err <= bound).all().item<bool>())
                << "M=" << M << " N=" << N << " K=" << K << " a_t=" << a_t << " b_t=" << b_t << " max error "
                << err.max().item<double>();
          }
        }
      }
    }
  }
}

// The portable small-GEMM kernel (what a CPU without AVX-512 runs) against float64, on a
// copied a (column-major), a copied b (transposed view) and a part panel (N = 45).
TEST(BatchedMatmul, PortableSmallGemmKernelMatchesFloat64) {
  torch::manual_seed(22);
  const int64_t M = 19, K = 33, N = 45;
  torch::Tensor a = torch::randn({K, M}).t(), b = torch::randn({N, K}).t();
  torch::Tensor c = torch::empty({M, N});
  ellm::kernels::generic::small_gemm_f32(a.data_ptr<float>(), a.stride(0), a.stride(1), b.data_ptr<float>(),
                                         b.stride(0), b.stride(1), c.data_ptr<float>(), N, M, N, K);
  torch::Tensor ref = torch::matmul(a.to(torch::kDouble), b.to(torch::kDouble));
  EXPECT_LT(batched_matmul_test::max_diff(c.to(torch::kDouble), ref), 1e-4);
  EXPECT_STRNE(ellm::kernels::small_gemm_kernels().isa, "");
}

// Heads as views of a fused [B, T, 3·H] projection: [B, nh, T, D] whose leading dims cannot be
// merged, read in place (no copy) forward and backward, fp32 on two threads, against matmul.
TEST(BatchedMatmul, ReadsHeadViewsOfAFusedProjection) {
  TwoThreads two;
  torch::manual_seed(23);
  const int64_t B = 2, T = 5, nh = 3, D = 8;
  torch::Tensor qkv = torch::randn({B, T, 3 * nh * D}).requires_grad_(true);
  auto run = [&](auto product) {
    std::vector<torch::Tensor> parts = qkv.view({B, T, 3, nh, D}).unbind(2);
    torch::Tensor q = parts[0].transpose(1, 2), k = parts[1].transpose(1, 2), v = parts[2].transpose(1, 2);
    EXPECT_FALSE(q.is_contiguous());
    torch::Tensor out = product(torch::softmax(product(q, k.transpose(-1, -2)), -1), v);
    torch::Tensor w = torch::arange(out.numel(), torch::kFloat).view(out.sizes()).sin();
    torch::Tensor grad = torch::autograd::grad({(out * w).sum()}, {qkv})[0];
    return std::make_pair(out.detach(), grad);
  };
  auto [ours, ours_grad] = run([](const torch::Tensor& a, const torch::Tensor& b) { return batched_matmul(a, b); });
  auto [ref, ref_grad] = run([](const torch::Tensor& a, const torch::Tensor& b) { return torch::matmul(a, b); });
  EXPECT_LT(batched_matmul_test::max_diff(ours, ref), 1e-5);
  EXPECT_LT(batched_matmul_test::max_diff(ours_grad, ref_grad), 1e-4);
}
