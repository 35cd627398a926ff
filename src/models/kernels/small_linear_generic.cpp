// The small-M linear kernels for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "small_linear_kernel.inc"
