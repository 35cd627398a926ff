// The AdamW kernels for x86-64 with AVX-512 (built with -mavx512f -mavx512bw, called only when
// the CPU reports them).
#define ELLM_KERNEL_ISA avx512
#include "adamw_kernel.inc"
