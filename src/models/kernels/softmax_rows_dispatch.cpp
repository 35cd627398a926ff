// Picks the softmax-row kernels for this CPU (see softmax_rows_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "softmax_rows_kernel.h"

namespace ellm::kernels {

const SoftmaxRowKernels& softmax_row_kernels() {
  static const SoftmaxRowKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return SoftmaxRowKernels{&avx512::logsumexp_f32, &avx512::logsumexp_bf16, &avx512::softmax_inplace_f32,
                               &avx512::softmax_inplace_bf16, "avx512"};
#endif
    return SoftmaxRowKernels{&generic::logsumexp_f32, &generic::logsumexp_bf16, &generic::softmax_inplace_f32,
                             &generic::softmax_inplace_bf16, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
