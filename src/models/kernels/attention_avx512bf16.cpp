// The attention kernels for x86-64 with AVX-512 and its BF16 extension (vdpbf16ps; built with
// -mavx512f -mavx512bw -mavx512bf16 -mfma, called only when the CPU reports them).
#define ELLM_KERNEL_ISA avx512bf16
#include "attention_kernel.inc"
