#include "ellm/models/batched_matmul.h"

#include <ATen/Parallel.h>
#include <ATen/ThreadLocalState.h>

#include <vector>

#include "kernels/small_gemm_kernel.h"

namespace ellm {

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

bool item_parallel(const Tensor& a, const Tensor& b) {
  return a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == b.scalar_type() &&
         (a.scalar_type() == torch::kFloat || a.scalar_type() == torch::kDouble) && at::get_num_threads() > 1;
}

// Where item i of x [..., R, C] starts, for every i: the leading dims walked with their own
// strides, so that a view whose leading dims cannot be merged (heads of a [B, T, 3H]
// projection seen as [B, nh, T, D]) needs no copy.
std::vector<int64_t> item_offsets(const Tensor& x) {
  const int64_t lead = x.dim() - 2;
  int64_t n = 1;
  for (int64_t d = 0; d < lead; ++d) n *= x.size(d);
  std::vector<int64_t> offsets(n);
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, offset = 0;
    for (int64_t d = lead - 1; d >= 0; --d) {
      offset += (rest % x.size(d)) * x.stride(d);
      rest /= x.size(d);
    }
    offsets[i] = offset;
  }
  return offsets;
}

// a [..., M, K] · b [..., K, N] → [..., M, N] contiguous, the items split over the threads.
// fp32: each item one call of the small-GEMM kernel on raw strided pointers
// (src/models/kernels/small_gemm_*): a Tensor select per operand and item cost more than a
// 64×64×64 product. fp64 (gradient checks): one BLAS call per item, which inside a parallel
// region runs on its calling thread only (OpenBLAS's OpenMP build checks omp_in_parallel); the
// workers take the caller's thread-local state (grad mode, inference mode) so that writing
// into `c` is legal wherever the caller could.
Tensor raw_batched_matmul(const Tensor& a, const Tensor& b) {
  const int64_t M = a.size(-2), K = a.size(-1), N = b.size(-1);
  auto shape = a.sizes().vec();
  shape.back() = N;
  Tensor c = torch::empty(shape, a.options());
  if (a.scalar_type() == torch::kFloat) {
    const std::vector<int64_t> oa = item_offsets(a), ob = item_offsets(b);
    const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
    float* pc = c.data_ptr<float>();
    const int64_t a_rs = a.stride(-2), a_cs = a.stride(-1), b_rs = b.stride(-2), b_cs = b.stride(-1);
    const auto gemm = kernels::small_gemm_kernels().f32;
    at::parallel_for(0, static_cast<int64_t>(oa.size()), 1, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        gemm(pa + oa[i], a_rs, a_cs, pb + ob[i], b_rs, b_cs, pc + i * M * N, N, M, N, K);
    });
    return c;
  }
  const Tensor a3 = a.reshape({-1, M, K}), b3 = b.reshape({-1, K, N}), c3 = c.view({-1, M, N});
  const at::ThreadLocalState caller;
  at::parallel_for(0, a3.size(0), 1, [&](int64_t i0, int64_t i1) {
    at::ThreadLocalStateGuard guard(caller);
    for (int64_t i = i0; i < i1; ++i) {
      Tensor ci = c3.select(0, i);
      at::mm_out(ci, a3.select(0, i), b3.select(0, i));
    }
  });
  return c;
}

struct BatchedMatmulFn : public torch::autograd::Function<BatchedMatmulFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& a, const Tensor& b) {
    ctx->save_for_backward({a, b});
    return raw_batched_matmul(a, b);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &a = saved[0], &b = saved[1], &g = grads[0];
    Tensor ga, gb;
    if (ctx->needs_input_grad(0)) ga = batched_matmul(g, b.transpose(-1, -2));
    if (ctx->needs_input_grad(1)) gb = batched_matmul(a.transpose(-1, -2), g);
    return {ga, gb};
  }
};

}  // namespace

Tensor batched_matmul(const Tensor& a, const Tensor& b) {
  TORCH_CHECK(a.dim() >= 3 && a.dim() == b.dim() && a.sizes().slice(0, a.dim() - 2) == b.sizes().slice(0, b.dim() - 2) &&
                  a.size(-1) == b.size(-2),
              "batched_matmul: [..., M, K] and [..., K, N] with equal leading dims expected, got ", a.sizes(), " and ",
              b.sizes());
  if (!item_parallel(a, b) || a.numel() / std::max<int64_t>(a.size(-1) * a.size(-2), 1) < 2) return torch::matmul(a, b);
  if (a.requires_grad() || b.requires_grad()) return BatchedMatmulFn::apply(a, b);
  return raw_batched_matmul(a, b);
}

}  // namespace ellm
