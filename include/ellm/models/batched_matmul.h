#pragma once
// Batched matrix product for attention: a [..., M, K] · b [..., K, N] → [..., M, N], the
// leading dims equal (no broadcasting), autograd-aware.
//
// Why not torch::matmul: for fp32 and fp64 on the CPU, ATen 1.13's bmm loops over the batch
// and calls a 2-thread BLAS on each small product. Attention's products are small ([G·T, D] ·
// [D, S] per kv head), where that costs more than it saves: a training step's [8,510,64] ·
// [8,64,255] took 2.8 ms on 2 threads against 1.9 ms on one (a scratch microbenchmark in
// python3-torch, the same ATen). Here the batch items are split over the intra-op threads
// instead: fp32 items on ellm's small-GEMM kernel (src/models/kernels/small_gemm_*, raw
// pointers, no per-item Tensor ops, operands of any strides read without a copy — heads can
// be views of a fused projection), fp64 items as single-threaded BLAS calls.
// Other dtypes (bf16: oneDNN's batched kernel is already efficient), other devices, a single
// item or a single thread: torch::matmul.
#include <torch/torch.h>

namespace ellm {

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace ellm
