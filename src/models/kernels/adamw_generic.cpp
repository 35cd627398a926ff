// The AdamW kernels for any CPU (the compiler's baseline instruction set).
#define ELLM_KERNEL_ISA generic
#include "adamw_kernel.inc"
