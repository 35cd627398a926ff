#pragma once
// y = x · wᵀ + b for a handful of rows, the shape of a decode step (batch × 1 new token).
//
// At M ≤ 8 rows a linear layer is bound by reading its weight once, and a BLAS call spends
// much of its time elsewhere (packing w into panels, waking threads). small_linear reads each
// weight row once with M × a few accumulators per row (src/models/kernels/), fp32 or bf16
// (bf16 accumulates in fp32), the columns split over the intra-op threads.
//
// Applies to inference on the CPU: x [.., K] with at most 8 rows in all (bf16: 2 with AVX512-BF16, else 1),
// last dim contiguous, w [N, K] contiguous, b [N] or undefined, all one dtype (fp32 or bf16),
// no gradient wanted. Otherwise it returns an undefined tensor and the caller takes the usual
// path (torch::linear), so callers need no checks of their own.
#include <torch/torch.h>

namespace ellm {

// [.., N], or undefined when the kernel does not apply (see above).
torch::Tensor small_linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b = {});

// The instruction set the kernels run with on this CPU ("avx512bf16", "avx512" or "generic"), for logs and benchmarks.
const char* small_linear_isa();

}  // namespace ellm
