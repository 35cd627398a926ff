// Picks the small-GEMM kernel for this CPU (see small_gemm_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "small_gemm_kernel.h"

namespace ellm::kernels {

const SmallGemmKernels& small_gemm_kernels() {
  static const SmallGemmKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return SmallGemmKernels{&avx512::small_gemm_f32, "avx512"};
#endif
    return SmallGemmKernels{&generic::small_gemm_f32, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
