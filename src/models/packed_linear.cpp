// Packing, checks and threading around the packed-weight linear kernels (src/models/kernels/).
#include "ellm/models/packed_linear.h"

#include <ATen/Parallel.h>

#include <algorithm>

#include "ellm/util/error.h"
#include "kernels/packed_linear_kernel.h"

namespace ellm {

namespace {
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
}  // namespace

const char* packed_linear_isa() { return kernels::packed_linear_kernels().isa; }

PackedLinear pack_linear(const torch::Tensor& w, const torch::Tensor& b) {
  ELLM_CHECK(w.defined() && w.dim() == 2, "pack_linear: the weight must be [out, in], got {} dims",
             w.defined() ? w.dim() : 0);
  const auto dtype = w.scalar_type();
  ELLM_CHECK(dtype == torch::kFloat32 || dtype == torch::kBFloat16, "pack_linear: weight dtype {} is not fp32 or bf16",
             c10::toString(dtype));
  const int64_t N = w.size(0), K = w.size(1), P = ceil_div(N, kernels::kPanelCols);
  ELLM_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == N), "pack_linear: bias of shape {} for a weight of {} rows",
             b.defined() ? fmt::format("{}", fmt::join(b.sizes(), "x")) : "-", N);
  torch::NoGradGuard no_grad;
  const int64_t Kp = dtype == torch::kBFloat16 ? ceil_div(K, 2) * 2 : K;
  torch::Tensor padded = torch::zeros({P * kernels::kPanelCols, Kp}, torch::dtype(dtype));
  padded.narrow(0, 0, N).narrow(1, 0, K).copy_(w.detach());
  PackedLinear out;
  out.panels = dtype == torch::kBFloat16
                   ? padded.view({P, kernels::kPanelCols, Kp / 2, 2}).permute({0, 2, 1, 3}).contiguous()
                   : padded.view({P, kernels::kPanelCols, K}).transpose(1, 2).contiguous();
  out.bias = torch::zeros({P * kernels::kPanelCols}, torch::kFloat32);
  if (b.defined()) out.bias.narrow(0, 0, N).copy_(b.detach());
  out.out_features = N;
  out.in_features = K;
  return out;
}

PackedLinear packed_output_slice(const PackedLinear& w, int64_t first, int64_t count) {
  const int64_t C = kernels::kPanelCols;
  ELLM_CHECK(w.defined() && first >= 0 && count > 0 && first + count <= w.out_features,
             "packed_output_slice: features [{}, {}) of a layer with {}", first, first + count, w.out_features);
  if (first % C != 0 || (count % C != 0 && first + count != w.out_features)) return {};
  PackedLinear out;
  out.panels = w.panels.narrow(0, first / C, ceil_div(count, C));
  out.bias = w.bias.narrow(0, first, ceil_div(count, C) * C);
  out.out_features = count;
  out.in_features = w.in_features;
  return out;
}

torch::Tensor packed_linear(const torch::Tensor& x, const PackedLinear& w) {
  if (!w.defined() || !x.defined() || x.dim() < 1 || !x.device().is_cpu() || x.layout() != torch::kStrided ||
      x.scalar_type() != w.panels.scalar_type() || x.size(-1) != w.in_features)
    return {};
  if (torch::GradMode::is_enabled() && x.requires_grad()) return {};
  const int64_t K = w.in_features, N = w.out_features, M = K > 0 ? x.numel() / K : 0;
  torch::Tensor x2 = x.reshape({M, K});  // rows of one stride, last dim contiguous (a reshape that does not copy)
  if (M == 0 || x2.stride(1) != 1) return {};
  const int64_t ldx = x2.stride(0);
  auto shape = x.sizes().vec();
  shape.back() = N;
  torch::Tensor y = torch::empty(shape, x.options());

  // Work units: (panel, block of rows), panel-major so that a thread keeps its panels in cache.
  // Rows are split only when there are too few panels to give every thread a few.
  const int64_t P = ceil_div(N, kernels::kPanelCols), threads = at::get_num_threads();
  const int64_t row_blocks = std::clamp<int64_t>(ceil_div(4 * threads, P), 1, ceil_div(M, 8));
  const int64_t rows = ceil_div(ceil_div(M, row_blocks), 8) * 8;
  const int64_t RB = ceil_div(M, rows);
  // A unit below ~256K flops does not pay for a thread's wake-up.
  const int64_t grain = std::max<int64_t>(1, (256 << 10) / std::max<int64_t>(2 * rows * K * kernels::kPanelCols, 1));
  const kernels::PackedLinearKernels& k = kernels::packed_linear_kernels();
  const float* bias = w.bias.data_ptr<float>();
  at::parallel_for(0, P * RB, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t p = u / RB, m0 = (u % RB) * rows, m1 = std::min(M, m0 + rows);
      if (x.scalar_type() == torch::kFloat32) {
        k.f32(x2.data_ptr<float>(), ldx, K, w.panels.data_ptr<float>(), bias, y.data_ptr<float>(), N, N, m0, m1, p,
              p + 1);
      } else {
        auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
        k.bf16(bits(x2), ldx, K, bits(w.panels), bias, bits(y), N, N, m0, m1, p, p + 1);
      }
    }
  });
  return y;
}

}  // namespace ellm
