// Picks the packed-weight linear kernels for this CPU (see packed_linear_kernel.h). Compiled
// with the ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "packed_linear_kernel.h"

namespace ellm::kernels {

const PackedLinearKernels& packed_linear_kernels() {
  static const PackedLinearKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
      return PackedLinearKernels{&avx512bf16::packed_linear_f32, &avx512bf16::packed_linear_bf16, "avx512bf16"};
#endif
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return PackedLinearKernels{&avx512::packed_linear_f32, &avx512::packed_linear_bf16, "avx512"};
#endif
    return PackedLinearKernels{&generic::packed_linear_f32, &generic::packed_linear_bf16, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
