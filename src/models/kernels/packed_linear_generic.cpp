// The packed-weight linear kernels for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "packed_linear_kernel.inc"
