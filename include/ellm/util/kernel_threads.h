#pragma once
// How many threads an at::parallel_for in ellm's own sources runs on, measured by running one.
//
// Why a measurement rather than at::get_num_threads(): at::parallel_for is a header template
// whose parallel branch is compiled only where _OPENMP is defined, so a build that lost
// -fopenmp on ellm's sources reports N threads yet runs every ellm kernel (small_linear,
// RMSNorm, RoPE, SwiGLU, attention, AdamW, dropout) on one. Benchmarks record this figure and
// a test asserts it.
namespace ellm {

int kernel_threads();

}  // namespace ellm
