// Dispatch, checks and threading around the small-M linear kernels (src/models/kernels/).
#include "ellm/models/small_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "kernels/small_linear_kernel.h"

namespace ellm {

const char* small_linear_isa() { return kernels::small_linear_kernels().isa; }

torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  if (!x.defined() || !w.defined() || x.dim() < 1 || w.dim() != 2) return {};
  const auto dtype = x.scalar_type();
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16) return {};
  for (const torch::Tensor* t : {&x, &w, &b})
    if (t->defined() && (!t->device().is_cpu() || t->scalar_type() != dtype || t->layout() != torch::kStrided))
      return {};
  const int64_t K = x.size(-1), N = w.size(0), M = K > 0 ? x.numel() / K : 0;
  const kernels::SmallLinearKernels& k = kernels::small_linear_kernels();
  if (M < 1 || M > (dtype == torch::kFloat32 ? k.f32_rows : k.bf16_rows) || w.size(1) != K || !w.is_contiguous())
    return {};
  if (b.defined() && (b.dim() != 1 || b.size(0) != N || !b.is_contiguous())) return {};
  if (torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (b.defined() && b.requires_grad())))
    return {};
  // Rows of one stride with the last dim contiguous (a reshape that does not copy).
  torch::Tensor x2 = x.reshape({M, K});
  if (x2.stride(1) != 1) return {};
  const int64_t ldx = x2.stride(0);

  auto shape = x.sizes().vec();
  shape.back() = N;
  torch::Tensor y = torch::empty(shape, x.options());
  // A task reads at least ~256 KiB of weights: below that a thread wake-up costs more than it saves.
  const int64_t grain = std::max<int64_t>(16, (256 * 1024) / std::max<int64_t>(K * x.element_size(), 1));
  at::parallel_for(0, N, grain, [&](int64_t n0, int64_t n1) {
    if (dtype == torch::kFloat32) {
      k.f32(x2.data_ptr<float>(), ldx, M, K, w.data_ptr<float>(), b.defined() ? b.data_ptr<float>() : nullptr,
            y.data_ptr<float>(), N, n0, n1);
    } else {
      auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
      k.bf16(bits(x2), ldx, M, K, bits(w), b.defined() ? bits(b) : nullptr, bits(y), N, n0, n1);
    }
  });
  return y;
}

}  // namespace ellm
