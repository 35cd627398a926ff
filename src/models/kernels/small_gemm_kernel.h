#pragma once
// c = a · b for one small fp32 product with any strides: the per-item loop behind
// ellm::batched_matmul (include/ellm/models/batched_matmul.h), which owns threading and checks.
// Torch-free, compiled once per instruction set; it shares packed_linear's register tiles
// (tile8x32.inc).
//
// a [M, K] with element (m, k) at a[m·a_rs + k·a_cs], b [K, N] likewise with b_rs, b_cs;
// c [M, N] row-major, rows ldc apart. An operand the tiles cannot read in place (a not
// unit-stride along k; b not unit-stride along n or N not a multiple of 32) is first copied
// into a per-thread buffer.
#include <cstdint>

namespace ellm::kernels {

#define ELLM_SMALL_GEMM_DECLARE(isa)                                                                        \
  namespace isa {                                                                                         \
  void small_gemm_f32(const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs, int64_t b_cs, \
                      float* c, int64_t ldc, int64_t M, int64_t N, int64_t K);                              \
  }

ELLM_SMALL_GEMM_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_SMALL_GEMM_DECLARE(avx512)
#endif
#undef ELLM_SMALL_GEMM_DECLARE

struct SmallGemmKernels {
  decltype(&generic::small_gemm_f32) f32;
  const char* isa;  // "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const SmallGemmKernels& small_gemm_kernels();

}  // namespace ellm::kernels
