#pragma once
// Bidirectional multi-head softmax attention at inference, straight from a fused projection:
//   qkv [B, T, 3H] (q | k | v, each nh heads of D = H/nh columns, q already scaled by 1/√D),
//   mask_bias [B, 1, 1, T] fp32 added to the scores (padding), or undefined
//   → context [B, T, H] in qkv's dtype, heads side by side (what the output projection reads).
//
// One (sequence, head) pair is one task on one intra-op thread (src/models/kernels/attention_*):
// no head copies, no BLAS thread pool, no [B·nh, T, T] scores tensor. fp32 throughout for
// fp32; bf16 as ATen's bf16 path computes it (bf16 products accumulated in fp32, softmax in
// fp32, the probabilities rounded to bf16 before p · v, the context rounded once).
//
// Applies to CPU inference on fp32 or bf16 with qkv contiguous and no gradient wanted;
// otherwise returns an undefined tensor and the caller takes the ATen path.
#include <torch/torch.h>

namespace ellm {

torch::Tensor encoder_attention(const torch::Tensor& qkv, const torch::Tensor& mask_bias, int64_t num_heads);

}  // namespace ellm
