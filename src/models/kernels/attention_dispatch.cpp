// Picks the attention kernels for this CPU (see attention_kernel.h). Compiled with the
// ELLM_HAVE_*_KERNELS definitions of the kernel files that were built (CMakeLists.txt).
#include "attention_kernel.h"

namespace ellm::kernels {

const AttentionKernels& attention_kernels() {
  static const AttentionKernels chosen = [] {
#if defined(ELLM_HAVE_AVX512BF16_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512bf16"))
      return AttentionKernels{&avx512bf16::attention_head_f32, &avx512bf16::attention_head_bf16,
                              &avx512bf16::attention_decode_f32, &avx512bf16::attention_decode_bf16, "avx512bf16"};
#endif
#if defined(ELLM_HAVE_AVX512_KERNELS)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw"))
      return AttentionKernels{&avx512::attention_head_f32, &avx512::attention_head_bf16,
                              &avx512::attention_decode_f32, &avx512::attention_decode_bf16, "avx512"};
#endif
    return AttentionKernels{&generic::attention_head_f32, &generic::attention_head_bf16,
                            &generic::attention_decode_f32, &generic::attention_decode_bf16, "generic"};
  }();
  return chosen;
}

}  // namespace ellm::kernels
