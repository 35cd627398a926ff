#pragma once
// The element loops behind ellm::fast_dropout (include/ellm/models/dropout.h), which owns the
// seed, threading and autograd. Torch-free, compiled once per instruction set.
//
// Keep/drop of element i is a 32-bit half of splitmix64's output for counter i/2: the low half
// for even i, the high half for odd i (the same stream on every instruction set and thread
// count). keep_i = [half ≥ threshold].
//   dropout:       y[i] = keep_i ? x[i]·scale : 0,  mask[i] = keep_i
//   masked_scale:  y[i] = mask[i] ? g[i]·scale : 0
// Both run over elements [begin, end) of the whole array (begin even). bf16 arrays are raw
// uint16 bit patterns, read exactly and written rounded to nearest even (NaN stays NaN).
#include <cstdint>

namespace ellm::kernels {

#define ELLM_DROPOUT_DECLARE(isa)                                                                           \
  namespace isa {                                                                                           \
  void dropout_f32(const float* x, float* y, uint8_t* mask, int64_t begin, int64_t end, uint64_t seed,     \
                   uint32_t threshold, float scale);                                                        \
  void dropout_bf16(const uint16_t* x, uint16_t* y, uint8_t* mask, int64_t begin, int64_t end, uint64_t seed, \
                    uint32_t threshold, float scale);                                                       \
  void masked_scale_f32(const float* g, const uint8_t* mask, float* y, int64_t begin, int64_t end, float scale); \
  void masked_scale_bf16(const uint16_t* g, const uint8_t* mask, uint16_t* y, int64_t begin, int64_t end,   \
                         float scale);                                                                      \
  }

ELLM_DROPOUT_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_DROPOUT_DECLARE(avx512)
#endif
#undef ELLM_DROPOUT_DECLARE

struct DropoutKernels {
  decltype(&generic::dropout_f32) dropout_f32;
  decltype(&generic::dropout_bf16) dropout_bf16;
  decltype(&generic::masked_scale_f32) masked_scale_f32;
  decltype(&generic::masked_scale_bf16) masked_scale_bf16;
  const char* isa;  // "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const DropoutKernels& dropout_kernels();

}  // namespace ellm::kernels
