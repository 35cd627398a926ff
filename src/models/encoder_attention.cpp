// Checks and threading around the attention kernels (src/models/kernels/attention_*).
#include "ellm/models/encoder_attention.h"

#include <ATen/Parallel.h>

#include "kernels/attention_kernel.h"

namespace ellm {

torch::Tensor encoder_attention(const torch::Tensor& qkv, const torch::Tensor& mask_bias, int64_t num_heads) {
  if (!qkv.defined() || qkv.dim() != 3 || !qkv.device().is_cpu() || !qkv.is_contiguous() || num_heads < 1 ||
      qkv.size(2) % (3 * num_heads) != 0)
    return {};
  const auto dtype = qkv.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) return {};
  if (torch::GradMode::is_enabled() && qkv.requires_grad()) return {};
  const int64_t B = qkv.size(0), T = qkv.size(1), H = qkv.size(2) / 3, D = H / num_heads;
  torch::Tensor bias;
  if (mask_bias.defined()) {
    if (!mask_bias.device().is_cpu() || mask_bias.numel() != B * T) return {};
    bias = mask_bias.to(torch::kFloat32).reshape({B, T}).contiguous();
  }
  torch::Tensor out = torch::empty({B, T, H}, qkv.options());
  if (B * T == 0) return out;
  const kernels::AttentionKernels& k = kernels::attention_kernels();
  const float* bias_data = bias.defined() ? bias.data_ptr<float>() : nullptr;
  const int64_t ld = 3 * H;
  at::parallel_for(0, B * num_heads, 1, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t b = u / num_heads, h = u % num_heads;
      const int64_t q_off = b * T * ld + h * D, out_off = b * T * H + h * D;
      const float* row_bias = bias_data ? bias_data + b * T : nullptr;
      if (dtype == torch::kFloat32) {
        const float* base = qkv.data_ptr<float>() + q_off;
        k.f32(base, base + H, base + 2 * H, ld, T, D, row_bias, out.data_ptr<float>() + out_off, H);
      } else {
        auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
        const uint16_t* base = bits(qkv) + q_off;
        k.bf16(base, base + H, base + 2 * H, ld, T, D, row_bias, bits(out) + out_off, H);
      }
    }
  });
  return out;
}

}  // namespace ellm
