// The softmax-row kernels (behind the LM loss) against fp64 references: every kernel the
// binary has (the portable one and the one chosen for this CPU), fp32 and bf16 rows, lengths
// with lane tails, large and very negative logits; and the bf16 LM loss against the plain
// upcast-logits formulation, value and gradients.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "ellm/models/decoder_ops.h"
#include "../../src/models/kernels/softmax_rows_kernel.h"

using namespace ellm;

namespace softmax_rows_test {

const uint16_t* bits(const torch::Tensor& t) { return reinterpret_cast<const uint16_t*>(t.data_ptr<at::BFloat16>()); }

void check(const kernels::SoftmaxRowKernels& k) {
  torch::manual_seed(3);
  for (int64_t n : {1, 15, 16, 17, 100, 8000}) {
    for (double scale : {1.0, 30.0}) {
      auto x = torch::randn({n}) * scale;
      x[0] = -200.0;  // far below the maximum: exp underflows to 0, no NaN
      if (n > 1) x[n - 1] = 60.0;
      for (bool bf16 : {false, true}) {
        auto xs = bf16 ? x.to(torch::kBFloat16) : x.clone();
        auto ref = xs.to(torch::kDouble);
        const double want = torch::logsumexp(ref, 0).item<double>();
        const float got = bf16 ? k.logsumexp_bf16(bits(xs), n) : k.logsumexp_f32(xs.data_ptr<float>(), n);
        EXPECT_NEAR(got, want, 1e-6 * std::max(1.0, std::abs(want))) << k.isa << " n=" << n << " bf16=" << bf16;
        auto soft = torch::softmax(ref, 0);
        if (bf16) k.softmax_bf16(reinterpret_cast<uint16_t*>(xs.data_ptr<at::BFloat16>()), n, got);
        else k.softmax_f32(xs.data_ptr<float>(), n, got);
        // fp32: exp(x − lse) inherits lse's float rounding, |lse|·2⁻²⁴ (≈ 4e-6 at lse ≈ 60),
        // as ATen's fp32 log_softmax does; bf16: the result is rounded to 8 bits.
        const double tol = bf16 ? 4e-3 : 1e-5;
        auto err = ((xs.to(torch::kDouble) - soft).abs() / soft.clamp_min(1e-30)).masked_select(soft > 1e-20);
        EXPECT_LT(err.max().item<double>(), tol) << k.isa << " n=" << n << " bf16=" << bf16;
        if (n > 1) {
          EXPECT_EQ(xs.to(torch::kDouble)[0].item<double>(), 0.0) << "exp(-200 - lse) must underflow to 0";
        }
      }
    }
  }
}

}  // namespace softmax_rows_test

TEST(SoftmaxRows, KernelsMatchDoubleReference) {
  softmax_rows_test::check(kernels::softmax_row_kernels());
  kernels::SoftmaxRowKernels portable{&kernels::generic::logsumexp_f32, &kernels::generic::logsumexp_bf16,
                                      &kernels::generic::softmax_inplace_f32, &kernels::generic::softmax_inplace_bf16,
                                      "generic"};
  softmax_rows_test::check(portable);
}

TEST(SoftmaxRows, Bf16LmLossMatchesUpcastLogitsCrossEntropy) {
  torch::manual_seed(4);
  const int64_t N = 40, H = 32, V = 1000;
  auto h = (torch::randn({N, H}) * 0.5).to(torch::kBFloat16).requires_grad_(true);
  auto w = (torch::randn({V, H}) * 0.2).to(torch::kBFloat16).requires_grad_(true);
  auto t = torch::randint(V, {N}, torch::kInt64);
  t[3] = -100;  // an ignored row
  auto loss = decoder_ops::linear_cross_entropy(h, w, t, false);
  auto g = torch::autograd::grad({loss}, {h, w});
  // transformers' formulation: logits in bf16, upcast, cross-entropy (mean over targets).
  auto ref = torch::nn::functional::cross_entropy(torch::mm(h, w.t()).to(torch::kFloat), t);
  auto gr = torch::autograd::grad({ref}, {h, w});
  EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-5 * ref.item<double>());
  for (int i = 0; i < 2; ++i) {
    auto a = g[i].to(torch::kFloat), b = gr[i].to(torch::kFloat);
    EXPECT_LT(((a - b).norm() / b.norm()).item<double>(), 1e-2) << i;
  }
  EXPECT_EQ(g[0][3].abs().max().item<double>(), 0.0) << "an ignored row gets no gradient";
  // A target outside the vocabulary is refused, naming the range.
  auto bad = t.clone();
  bad[0] = V;
  try {
    decoder_ops::linear_cross_entropy(h.detach(), w.detach(), bad, false);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    EXPECT_NE(std::string(e.what()).find("outside the vocabulary"), std::string::npos) << e.what();
  }
}
