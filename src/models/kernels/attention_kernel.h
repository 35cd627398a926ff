#pragma once
// One head of bidirectional softmax attention for one sequence, at inference:
//   out[i, :] = Σ_j softmax_j(q_i · k_j + bias_j) · v_j
// the loop behind ellm::encoder_attention (include/ellm/models/encoder_attention.h), which
// owns threading and checks; and the decoder's decode-step attention (attention_decode_*,
// below), behind decoder_ops::attention_decode. Torch-free, compiled once per instruction set like
// packed_linear_kernel.h, whose register tiles it shares (tile8x32.inc).
//
// q, k, v [T, D]: rows ld apart (views into a fused [T, 3H] projection), q already scaled by
// 1/√D. bias [T] fp32 is added to every row's scores (the padding mask), null for none.
// out [T, D], rows ldo apart. fp32 throughout for fp32; bf16 as ATen's bf16 attention runs
// it: products of bf16 pairs accumulated in fp32, the softmax in fp32 (softmax_rows' exp),
// the probabilities rounded to bf16 before p · v, out rounded once to nearest even.
#include <cstdint>

namespace ellm::kernels {

// Decode steps (attention_decode_*): the R query rows that share one key/value head (GQA's G
// heads × T new tokens, row i = head i / T, token i % T) against S cached keys:
//   out[i, :] = Σ_j softmax_j(q_i · k_j + bias[i % T, j]) · v_j
// q [R, D] contiguous, already scaled; k, v [S, D] rows ldk, ldv apart (the cache's views);
// bias fp32 [T, S] rows ldb apart, null for none; out row i at out + (i / T)·ldo_head +
// (i % T)·ldo_token. Scores, softmax and p · v in fp32 (bf16 products are exact in fp32),
// out rounded once to nearest even for bf16.
#define ELLM_ATTENTION_DECLARE(isa)                                                                          \
  namespace isa {                                                                                          \
  void attention_head_f32(const float* q, const float* k, const float* v, int64_t ld, int64_t T, int64_t D,   \
                          const float* bias, float* out, int64_t ldo);                                      \
  void attention_head_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t ld, int64_t T,    \
                           int64_t D, const float* bias, uint16_t* out, int64_t ldo);                       \
  void attention_decode_f32(const float* q, int64_t R, int64_t T, const float* k, int64_t ldk, const float* v, \
                            int64_t ldv, int64_t S, int64_t D, const float* bias, int64_t ldb, float* out,     \
                            int64_t ldo_head, int64_t ldo_token);                                           \
  void attention_decode_bf16(const uint16_t* q, int64_t R, int64_t T, const uint16_t* k, int64_t ldk,         \
                             const uint16_t* v, int64_t ldv, int64_t S, int64_t D, const float* bias,         \
                             int64_t ldb, uint16_t* out, int64_t ldo_head, int64_t ldo_token);              \
  }

ELLM_ATTENTION_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_ATTENTION_DECLARE(avx512)
#endif
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
ELLM_ATTENTION_DECLARE(avx512bf16)
#endif
#undef ELLM_ATTENTION_DECLARE

struct AttentionKernels {
  decltype(&generic::attention_head_f32) f32;
  decltype(&generic::attention_head_bf16) bf16;
  decltype(&generic::attention_decode_f32) decode_f32;
  decltype(&generic::attention_decode_bf16) decode_bf16;
  const char* isa;  // "avx512bf16", "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const AttentionKernels& attention_kernels();

}  // namespace ellm::kernels
