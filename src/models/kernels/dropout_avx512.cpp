// The dropout kernels for x86-64 with AVX-512 (built with -mavx512f -mavx512bw -mavx512dq, called
// only when the CPU reports them; DQ has the 64-bit lane multiply the hash needs).
#define ELLM_KERNEL_ISA avx512
#include "dropout_kernel.inc"
