#pragma once
// One head of bidirectional softmax attention for one sequence, at inference:
//   out[i, :] = Σ_j softmax_j(q_i · k_j + bias_j) · v_j
// the loop behind ellm::encoder_attention (include/ellm/models/encoder_attention.h), which
// owns threading and checks. Torch-free, compiled once per instruction set like
// packed_linear_kernel.h, whose register tiles it shares (tile8x32.inc).
//
// q, k, v [T, D]: rows ld apart (views into a fused [T, 3H] projection), q already scaled by
// 1/√D. bias [T] fp32 is added to every row's scores (the padding mask), null for none.
// out [T, D], rows ldo apart. fp32 throughout for fp32; bf16 as ATen's bf16 attention runs
// it: products of bf16 pairs accumulated in fp32, the softmax in fp32 (softmax_rows' exp),
// the probabilities rounded to bf16 before p · v, out rounded once to nearest even.
#include <cstdint>

namespace ellm::kernels {

#define ELLM_ATTENTION_DECLARE(isa)                                                                          \
  namespace isa {                                                                                          \
  void attention_head_f32(const float* q, const float* k, const float* v, int64_t ld, int64_t T, int64_t D,   \
                          const float* bias, float* out, int64_t ldo);                                      \
  void attention_head_bf16(const uint16_t* q, const uint16_t* k, const uint16_t* v, int64_t ld, int64_t T,    \
                           int64_t D, const float* bias, uint16_t* out, int64_t ldo);                       \
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
  const char* isa;  // "avx512bf16", "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const AttentionKernels& attention_kernels();

}  // namespace ellm::kernels
