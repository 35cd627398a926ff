#pragma once
// Dropout for CPU tensors with a counter-based random stream.
//
// Why: libtorch 1.13 built without MKL (Debian's) draws dropout masks with a
// serial Bernoulli sampler, ~10-50 ns per element; a BERT-tiny training step
// (batch 32 × 64 tokens) draws 6.8M of them — about a quarter of the step.
// Here keep/drop of element i is a bit of splitmix64(seed, i): computed in
// parallel, in one pass that also writes the output and a 1-byte mask.
//
//   y = x · keep / (1 − p),   keep_i = [hash(seed, i) ≥ p · 2³²],
//   dy/dx = keep / (1 − p)    (the mask is saved for the backward pass)
//
// The seed is one draw from the default CPU generator, so torch::manual_seed
// decides the masks (the Trainer's per-step reseeding keeps a step's masks
// reproducible and a resumed run exact), and the masks do not depend on the
// number of threads. Not in training, or p = 0: x itself. CUDA tensors, and
// dtypes other than fp32/bf16/fp64, go to torch::dropout.
#include <ATen/core/Tensor.h>

namespace ellm {

at::Tensor fast_dropout(const at::Tensor& x, double p, bool training);

}  // namespace ellm
