// The softmax-row kernels for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "softmax_rows_kernel.inc"
