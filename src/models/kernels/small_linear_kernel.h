#pragma once
// y = x · wᵀ (+ bias) for a few rows of x, on raw row-major arrays: the loop behind
// ellm::small_linear (include/ellm/models/small_linear.h), which owns threading and checks.
//
// Compiled once per instruction set (small_linear_<isa>.cpp include small_linear_kernel.inc
// with different -m flags); the caller picks one at run time. Torch-free on purpose: these
// files build with their own flags, outside the precompiled headers.
//
// x [M, K] (row stride ldx), w [N, K] contiguous, bias [N] or null, y [M, N] (row stride ldy).
// Only the columns [n0, n1) of y are written. bf16 arrays are raw uint16 bit patterns;
// products accumulate in fp32 and y is rounded to bf16 once, to nearest even.
#include <cstdint>

namespace ellm::kernels {

#define ELLM_SMALL_LINEAR_DECLARE(isa)                                                                      \
  namespace isa {                                                                                         \
  void small_linear_f32(const float* x, int64_t ldx, int64_t M, int64_t K, const float* w, const float* bias, \
                        float* y, int64_t ldy, int64_t n0, int64_t n1);                                    \
  void small_linear_bf16(const uint16_t* x, int64_t ldx, int64_t M, int64_t K, const uint16_t* w,          \
                         const uint16_t* bias, uint16_t* y, int64_t ldy, int64_t n0, int64_t n1);          \
  }

ELLM_SMALL_LINEAR_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_SMALL_LINEAR_DECLARE(avx512)
#endif
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
ELLM_SMALL_LINEAR_DECLARE(avx512bf16)
#endif
#undef ELLM_SMALL_LINEAR_DECLARE

// The most rows one call handles in registers; more rows are processed in blocks of this many.
constexpr int64_t kSmallLinearRowBlock = 8;

// The kernels for this CPU, and up to how many rows each beats the BLAS (docs/decoder.md):
// fp32 up to 8 rows against OpenBLAS; bf16 with vdpbf16ps up to 8 rows against oneDNN's
// AMX-less gemm (end to end, `ellm bench generate --dtype bf16 --batch 4,8`: 1.5–2.1×);
// bf16 that converts to fp32 turns compute-bound from 2 rows (a scratch harness measured
// before ellm's parallel_for ran on two threads, so a conservative limit).
struct SmallLinearKernels {
  decltype(&generic::small_linear_f32) f32;
  decltype(&generic::small_linear_bf16) bf16;
  const char* isa;  // "avx512bf16", "avx512" or "generic"
  int64_t f32_rows, bf16_rows;
};

// Chosen once from what the CPU reports (a binary may run on another machine than it was built on).
const SmallLinearKernels& small_linear_kernels();

}  // namespace ellm::kernels
