#pragma once
// y = x · wᵀ + bias with w packed once into column panels: the loop behind
// ellm::packed_linear (include/ellm/models/packed_linear.h), which packs, checks and threads.
//
// Compiled once per instruction set (packed_linear_<isa>.cpp include packed_linear_kernel.inc
// with different -m flags); the caller picks one at run time. Torch-free on purpose.
//
// Layout. w [N, K] is cut into panels of kPanelCols = 32 output columns (N padded with zero
// rows to a whole number of panels). fp32: panel p is [K][32], element (k, j) = w[32p + j, k].
// bf16: K is padded to even and panel p is [K/2][32][2], element (k2, j, e) = w[32p + j, 2·k2 + e],
// the pair layout vdpbf16ps multiplies. bias [N padded] is fp32 (zeros when the layer has none).
//
// x [M, K] (row stride ldx), y [M, N] (row stride ldy), same dtype as the panels; bf16 arrays
// are raw uint16 bit patterns, products accumulate in fp32 and y is rounded once, to nearest
// even. Only panels [p0, p1) and rows [m0, m1) of y are written.
#include <cstdint>

namespace ellm::kernels {

constexpr int64_t kPanelCols = 32;

#define ELLM_PACKED_LINEAR_DECLARE(isa)                                                                         \
  namespace isa {                                                                                             \
  void packed_linear_f32(const float* x, int64_t ldx, int64_t K, const float* panels, const float* bias,       \
                         float* y, int64_t ldy, int64_t N, int64_t m0, int64_t m1, int64_t p0, int64_t p1);     \
  void packed_linear_bf16(const uint16_t* x, int64_t ldx, int64_t K, const uint16_t* panels, const float* bias, \
                          uint16_t* y, int64_t ldy, int64_t N, int64_t m0, int64_t m1, int64_t p0, int64_t p1); \
  }

ELLM_PACKED_LINEAR_DECLARE(generic)
#if defined(ELLM_HAVE_AVX512_KERNELS)
ELLM_PACKED_LINEAR_DECLARE(avx512)
#endif
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
ELLM_PACKED_LINEAR_DECLARE(avx512bf16)
#endif
#undef ELLM_PACKED_LINEAR_DECLARE

struct PackedLinearKernels {
  decltype(&generic::packed_linear_f32) f32;
  decltype(&generic::packed_linear_bf16) bf16;
  const char* isa;  // "avx512bf16", "avx512" or "generic"
};

// Chosen once from what the CPU reports.
const PackedLinearKernels& packed_linear_kernels();

}  // namespace ellm::kernels
