// The dropout kernels for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "dropout_kernel.inc"
