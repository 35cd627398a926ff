#pragma once
// y = x · wᵀ + b at inference, with w packed once into column panels instead of on every call.
//
// A BLAS sgemm packs its weight operand into panels inside every call; for the students'
// inference shapes (64 rows × 256 × 768 at batch 1) that copy costs a fifth of the encoder's
// time, and the call also runs on the BLAS's own thread pool beside ATen's. pack_linear does
// the copy once, when a model's inference weights are prepared; packed_linear then computes
// with register-tiled kernels (src/models/kernels/packed_linear_*), fp32 or bf16 (bf16
// accumulates in fp32 and rounds once), the panels and rows split over ATen's intra-op threads.
//
// Applies to CPU inference: x [.., K] in the panels' dtype with its last dim contiguous, no
// gradient wanted. Otherwise packed_linear returns an undefined tensor and the caller takes
// torch::linear with the unpacked weight, so callers need no checks of their own.
#include <torch/torch.h>

namespace ellm {

struct PackedLinear {
  torch::Tensor panels;  // fp32 [P, K, 32] or bf16 [P, ⌈K/2⌉, 32, 2], P = ⌈N/32⌉ (kernels/packed_linear_kernel.h)
  torch::Tensor bias;    // fp32 [32·P], zero past N and where the layer has no bias
  int64_t out_features = 0, in_features = 0;
  bool defined() const { return panels.defined(); }
};

// w [N, K] (fp32 or bf16; the panels keep its dtype) and b [N] or undefined, copied to the CPU.
PackedLinear pack_linear(const torch::Tensor& w, const torch::Tensor& b = {});

// Output features [first, first + count) of `w` as a view of its panels (no copy), or undefined
// when they do not start and end on panel boundaries (first a multiple of 32; count too, unless
// the slice runs to the end).
PackedLinear packed_output_slice(const PackedLinear& w, int64_t first, int64_t count);

// [.., N], or undefined when the kernels do not apply (see above).
torch::Tensor packed_linear(const torch::Tensor& x, const PackedLinear& w);

// The instruction set the kernels run with on this CPU ("avx512bf16", "avx512" or "generic").
const char* packed_linear_isa();

}  // namespace ellm
