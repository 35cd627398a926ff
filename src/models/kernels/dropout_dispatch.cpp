// Picks the dropout kernels for this CPU (see dropout_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "dropout_kernel.h"

namespace ellm::kernels {

const DropoutKernels& dropout_kernels() {
  static const DropoutKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
      return DropoutKernels{&avx512::dropout_f32, &avx512::dropout_bf16, &avx512::masked_scale_f32,
                            &avx512::masked_scale_bf16, "avx512"};
#endif
    return DropoutKernels{&generic::dropout_f32, &generic::dropout_bf16, &generic::masked_scale_f32,
                          &generic::masked_scale_bf16, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
