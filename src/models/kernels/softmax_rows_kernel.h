#pragma once
// Rows of logits → log-sum-exp, and softmax written over the row in place: the per-row loops
// behind decoder_ops::linear_cross_entropy (the LM loss), which owns threading, targets and
// checks. In one read for the maximum, one for the sum and one read-write for the softmax, on
// the logits in their own dtype: the ATen formulation (upcast bf16 logits to fp32, log_softmax,
// exp, downcast the gradient) makes five whole-matrix passes and two [rows, vocab] temporaries.
//
// Compiled once per instruction set (softmax_rows_<isa>.cpp include softmax_rows_kernel.inc);
// torch-free, like small_linear_kernel.h. exp is a degree-6 polynomial after range reduction
// to |r| ≤ ln2/2 (relative error ≤ 2e-7); e^x below e^-87.3 is 0. bf16 arrays are raw uint16
// bit patterns, read exactly and written rounded to nearest even.
#include <cstdint>

namespace ellm::kernels {

#define ELLM_SOFTMAX_ROWS_DECLARE(isa)                                 \
  namespace isa {                                                      \
  float logsumexp_f32(const float* x, int64_t n);                      \
  float logsumexp_bf16(const uint16_t* x, int64_t n);                  \
  void softmax_inplace_f32(float* x, int64_t n, float logsumexp);      \
  void softmax_inplace_bf16(uint16_t* x, int64_t n, float logsumexp);  \
  }

ELLM_SOFTMAX_ROWS_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_SOFTMAX_ROWS_DECLARE(avx512)
#endif
#undef ELLM_SOFTMAX_ROWS_DECLARE

struct SoftmaxRowKernels {
  decltype(&generic::logsumexp_f32) logsumexp_f32;
  decltype(&generic::logsumexp_bf16) logsumexp_bf16;
  decltype(&generic::softmax_inplace_f32) softmax_f32;
  decltype(&generic::softmax_inplace_bf16) softmax_bf16;
  const char* isa;
};

// Chosen once from what the CPU reports.
const SoftmaxRowKernels& softmax_row_kernels();

}  // namespace ellm::kernels
