// The small-GEMM kernel for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "small_gemm_kernel.inc"
