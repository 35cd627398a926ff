// Picks the AdamW kernels for this CPU (see adamw_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "adamw_kernel.h"

namespace ellm::kernels {

const AdamWKernels& adamw_kernels() {
  static const AdamWKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return AdamWKernels{&avx512::adamw_f32, &avx512::adamw_bf16, "avx512"};
#endif
    return AdamWKernels{&generic::adamw_f32, &generic::adamw_bf16, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
