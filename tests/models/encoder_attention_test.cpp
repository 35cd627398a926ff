// encoder_attention (inference attention from a fused q|k|v projection) against softmax
// attention computed in float64 with ATen: sequence lengths around the 32-column panels and
// the 8-row tiles, head widths read in place (multiples of 32) and copied (others), padding
// masks, fp32 and bf16 (pair tiles, probabilities rounded to bf16 as ATen's bf16 path does);
// the portable kernels against the chosen ones; and where it steps aside.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "ellm/models/encoder_attention.h"
#include "../../src/models/kernels/attention_kernel.h"

using namespace ellm;

namespace {

// qkv [B,T,3H] → [B,T,H], every head in float64 (abs_values: Σ_j p_ij·|v_j|, the scale of
// the error that rounding the probabilities to bf16 can make).
torch::Tensor attention_fp64(const torch::Tensor& qkv, const torch::Tensor& mask_bias, int64_t nh,
                             bool abs_values = false) {
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(2) / 3, D = H / nh;
  auto heads = [&](int64_t part) {
    return qkv.to(torch::kFloat64).narrow(2, part * H, H).view({B, T, nh, D}).transpose(1, 2);  // [B,nh,T,D]
  };
  torch::Tensor scores = torch::matmul(heads(0), heads(1).transpose(-1, -2));
  if (mask_bias.defined()) scores = scores + mask_bias.to(torch::kFloat64);
  torch::Tensor v = abs_values ? heads(2).abs() : heads(2);
  return torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({B, T, H});
}

torch::Tensor padding_bias(int64_t B, int64_t T) {  // sequence b keeps its first T - 2b tokens (at least 1)
  torch::Tensor bias = torch::zeros({B, 1, 1, T});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = std::max<int64_t>(1, T - 2 * b); j < T; ++j) bias[b][0][0][j] = -1e9;
  return bias;
}

}  // namespace

TEST(EncoderAttention, MatchesFloat64WithAndWithoutPadding) {
  torch::InferenceMode guard;
  torch::manual_seed(11);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t T : {1, 5, 33, 64, 70}) {
      for (auto [nh, D] : {std::pair<int64_t, int64_t>{1, 32}, {2, 64}, {3, 16}, {2, 40}}) {
        for (bool masked : {false, true}) {
          const int64_t B = 3, H = nh * D;
          torch::Tensor qkv = torch::randn({B, T, 3 * H}).to(dtype);
          torch::Tensor bias = masked ? padding_bias(B, T) : torch::Tensor();
          torch::Tensor out = encoder_attention(qkv, bias, nh);
          const std::string what = fmt::format("{} T={} nh={} D={} masked={}", c10::toString(dtype), T, nh, D, masked);
          ASSERT_TRUE(out.defined()) << what;
          ASSERT_EQ(out.scalar_type(), dtype) << what;
          ASSERT_EQ(out.sizes(), (std::vector<int64_t>{B, T, H})) << what;
          torch::Tensor ref = attention_fp64(qkv, bias, nh);
          // fp32: summation order and the exp polynomial. bf16 (as ATen's bf16 attention): the
          // probabilities are rounded to bf16 before p · v (2⁻⁹ relative each, so up to
          // 2⁻⁹·Σ p|v|) and the context once more; 2⁻⁸ allows for vdpbf16ps's own rounding.
          torch::Tensor err = (out.to(torch::kFloat64) - ref).abs();
          torch::Tensor bound = dtype == torch::kFloat32
                                    ? ref.abs() * 1e-5 + 2e-5
                                    : (attention_fp64(qkv, bias, nh, true) + ref.abs()) / 256 + 2e-5;
          EXPECT_TRUE((err <= bound).all().item<bool>()) << what << " max error " << err.max().item<double>();
        }
      }
    }
  }
}

TEST(EncoderAttention, PortableKernelAgreesWithTheChosenOne) {
  torch::manual_seed(12);
  const int64_t T = 45, D = 64, H = 2 * D;
  torch::Tensor qkv = torch::randn({T, 3 * H}), bias = torch::randn({T});
  torch::Tensor portable = torch::empty({T, D}), chosen = torch::empty({T, D});
  const float* base = qkv.data_ptr<float>() + D;  // the second head
  kernels::generic::attention_head_f32(base, base + H, base + 2 * H, 3 * H, T, D, bias.data_ptr<float>(),
                                       portable.data_ptr<float>(), D);
  kernels::attention_kernels().f32(base, base + H, base + 2 * H, 3 * H, T, D, bias.data_ptr<float>(),
                                   chosen.data_ptr<float>(), D);
  EXPECT_TRUE(torch::allclose(portable, chosen, 1e-5, 2e-5))
      << kernels::attention_kernels().isa << " max difference " << (portable - chosen).abs().max().item<double>();
  torch::Tensor ref = attention_fp64(qkv.narrow(1, 0, 3 * H).unsqueeze(0), bias.view({1, 1, 1, T}), 2)[0].narrow(1, D, D);
  EXPECT_TRUE(torch::allclose(portable.to(torch::kFloat64), ref, 1e-5, 2e-5))
      << "max error " << (portable.to(torch::kFloat64) - ref).abs().max().item<double>();
}

TEST(EncoderAttention, PortableBf16KernelAgreesWithTheChosenOne) {
  torch::manual_seed(14);
  const int64_t T = 37, D = 40, H = 2 * D;  // odd T and a part panel of D: the pair tails
  torch::Tensor qkv = torch::randn({T, 3 * H}).to(torch::kBFloat16), bias = torch::randn({T});
  torch::Tensor portable = torch::empty({T, D}, torch::kBFloat16), chosen = torch::empty({T, D}, torch::kBFloat16);
  auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
  const uint16_t* base = bits(qkv);  // the first head
  kernels::generic::attention_head_bf16(base, base + H, base + 2 * H, 3 * H, T, D, bias.data_ptr<float>(),
                                        bits(portable), D);
  kernels::attention_kernels().bf16(base, base + H, base + 2 * H, 3 * H, T, D, bias.data_ptr<float>(), bits(chosen), D);
  torch::Tensor full = qkv.narrow(1, 0, 3 * H).unsqueeze(0);
  torch::Tensor ref = attention_fp64(full, bias.view({1, 1, 1, T}), 2)[0].narrow(1, 0, D);
  torch::Tensor scale = attention_fp64(full, bias.view({1, 1, 1, T}), 2, true)[0].narrow(1, 0, D);
  for (const torch::Tensor* out : {&portable, &chosen}) {
    torch::Tensor err = (out->to(torch::kFloat64) - ref).abs();
    EXPECT_TRUE((err <= (scale + ref.abs()) / 256 + 2e-5).all().item<bool>())
        << (out == &portable ? "generic" : kernels::attention_kernels().isa) << " max error " << err.max().item<double>();
  }
}

TEST(EncoderAttention, StepsAsideWhereItDoesNotApply) {
  torch::manual_seed(13);
  torch::Tensor qkv = torch::randn({2, 8, 3 * 64});
  {
    torch::InferenceMode guard;
    EXPECT_FALSE(encoder_attention(qkv.to(torch::kFloat64), {}, 2).defined());   // dtype
    EXPECT_FALSE(encoder_attention(qkv.transpose(0, 1), {}, 2).defined());       // not contiguous
    EXPECT_FALSE(encoder_attention(qkv.view({16, 3 * 64}), {}, 2).defined());    // not [B,T,3H]
    EXPECT_FALSE(encoder_attention(qkv, {}, 5).defined());                      // 64 columns in 5 heads
    EXPECT_FALSE(encoder_attention(qkv, torch::zeros({2, 1, 1, 9}), 2).defined());  // mask of another length
    EXPECT_TRUE(encoder_attention(qkv, {}, 2).defined());
  }
  EXPECT_FALSE(encoder_attention(qkv.clone().requires_grad_(true), {}, 2).defined());  // autograd: the ATen path
}
