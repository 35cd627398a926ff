// Picks the small-M linear kernels for this CPU (see small_linear_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "small_linear_kernel.h"

namespace ellm::kernels {

const SmallLinearKernels& small_linear_kernels() {
  static const SmallLinearKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
      return SmallLinearKernels{&avx512bf16::small_linear_f32, &avx512bf16::small_linear_bf16, "avx512bf16", 8, 8};
#endif
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return SmallLinearKernels{&avx512::small_linear_f32, &avx512::small_linear_bf16, "avx512", 8, 1};
#endif
    return SmallLinearKernels{&generic::small_linear_f32, &generic::small_linear_bf16, "generic", 8, 1};
  }();
  return chosen;
}

}  // namespace ellm::kernels
