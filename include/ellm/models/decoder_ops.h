#pragma once
// Fused building blocks of the decoder (models/decoder.cpp). Each is one autograd-aware
// operation instead of the 5–15 small tensor operations of its plain formulation: at the
// tiny teacher's sizes a decode step costs the number of operations dispatched, not the
// FLOPs (a 4-layer step went from ~250 operations to ~60).
//
// On CPU tensors of fp32 / bf16 / fp16 / fp64 each runs one loop over rows (threads above a
// grain size); elsewhere (CUDA) each falls back to the plain formulation, whose autograd
// gives the same gradients. The numerics follow transformers' eager code: RMSNorm computes in
// fp32 (fp64 stays fp64) and rounds to the compute dtype before the weight; SiLU rounds
// before the product; RoPE's products are rounded once.
#include <torch/torch.h>

namespace ellm::decoder_ops {

// weight * x / sqrt(mean(x²) + eps) over the last dim. x [.., H], weight [H].
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// Rotary embedding of queries and keys (rotate-half form, as transformers' Llama/Qwen2) with
// the head axis moved forward: q_in [B,T,Nq,D], k_in [B,T,Nk,D] (any strides with the last dim
// contiguous, e.g. views of one fused q/k/v projection), cos/sin [B or 1, T, D] (last dim
// contiguous). Returns q [B,Nq,T,D] · q_scale and k [B,Nk,T,D], both contiguous. q_scale folds
// attention's 1/sqrt(D) into the queries.
std::pair<torch::Tensor, torch::Tensor> rope_qk(const torch::Tensor& q_in, const torch::Tensor& k_in,
                                                const torch::Tensor& cos, const torch::Tensor& sin, double q_scale);

// Attention of a few new queries over cached keys and values, for inference (no autograd):
// one kernel call per (sequence, kv head), which reads each cached key once for the G query
// heads that share it (src/models/kernels/attention_kernel.h), instead of two batched matmuls,
// a softmax and the layout changes around them, whose per-matrix dispatch dominates a decode
// step. q [B,H,T,D] contiguous, already scaled by 1/sqrt(D); k, v [B,KV,S,D] with the last dim
// contiguous (views of the KV cache); bias fp32 additive [B or 1,1,1,T,S] or undefined. Query
// head h reads kv head h / (H / KV). Returns [B,T,H·D] in q's dtype (scores, softmax and p · v
// in fp32), or an undefined tensor when the kernel does not apply (not on the CPU, not fp32 or
// bf16, mixed dtypes, gradients wanted): the caller then takes the matmul path.
torch::Tensor attention_decode(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                               const torch::Tensor& bias);

// silu(gate) * up. gate, up [.., I] of one shape (e.g. the two halves of a fused gate/up
// projection). Small inputs (decode steps) take the fused loop; large ones ATen's vectorised
// silu and mul.
torch::Tensor swiglu(const torch::Tensor& gate, const torch::Tensor& up);

// Cross-entropy of the logits hidden · weightᵀ (computed in the hidden states' dtype,
// upcast to fp32 (fp64 for fp64) as transformers does) against targets, without ever holding
// the [N, V] logits: rows are processed in chunks, and when gradients are wanted they are
// computed in the same pass (softmax − one-hot, two matmuls per chunk) and kept ([N,H] and
// [V,H], not [N,V]). hidden [N,H], weight [V,H], targets [N] int64 (ignore_index: no loss).
// sum: the summed loss, else the mean over the non-ignored rows. A scalar in fp32 (fp64 for fp64).
torch::Tensor linear_cross_entropy(const torch::Tensor& hidden, const torch::Tensor& weight,
                                   const torch::Tensor& targets, bool sum, int64_t ignore_index = -100);

}  // namespace ellm::decoder_ops
