// The small-GEMM kernel for x86-64 with AVX-512 (built with -mavx512f -mavx512bw -mfma, called
// only when the CPU reports them).
#define ELLM_KERNEL_ISA avx512
#include "small_gemm_kernel.inc"
