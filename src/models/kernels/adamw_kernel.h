#pragma once
// The element loop of AdamW's fused update (ellm::AdamW::step, include/ellm/train/adamw.h, which
// owns the schedule, threading and checks), over elements [begin, end) of one parameter:
//
//   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g·g
//   p = p·(1 − lr·wd) − (lr / (1−β1ᵗ))·m / (√v / √(1−β2ᵗ) + ε)
//
// in fp32, in exactly this order, each operation rounded once (compiled without FMA contraction
// and without errno on sqrt, so that every instruction set vectorises it and gives the same
// bits). bf16 parameters and gradients are raw uint16 bit patterns: widened exactly, the new
// parameter rounded to nearest even (NaN → 0x7FC0, as c10::BFloat16 does); moments stay fp32.
// Torch-free, compiled once per instruction set.
#include <cstdint>

namespace ellm::kernels {

struct AdamWCoefficients {
  float decay, beta1, beta2, one_minus_beta1, one_minus_beta2, bias2_sqrt, eps, step_size;
};

#define ELLM_ADAMW_DECLARE(isa)                                                                              \
  namespace isa {                                                                                            \
  void adamw_f32(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,                   \
                 const AdamWCoefficients& c);                                                                \
  void adamw_bf16(uint16_t* p, const uint16_t* g, float* m, float* v, int64_t begin, int64_t end,            \
                  const AdamWCoefficients& c);                                                               \
  }

ELLM_ADAMW_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_ADAMW_DECLARE(avx512)
#endif
#undef ELLM_ADAMW_DECLARE

struct AdamWKernels {
  decltype(&generic::adamw_f32) f32;
  decltype(&generic::adamw_bf16) bf16;
  const char* isa;  // "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const AdamWKernels& adamw_kernels();

}  // namespace ellm::kernels
