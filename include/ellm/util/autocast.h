#pragma once
// Mixed-precision training, in one place: an RAII scope that turns on libtorch's
// autocast (CPU and CUDA) for the forward pass of a training step.
//
// Inside the scope matmul-like ops (linear, addmm, bmm, baddbmm, matmul) run in
// bf16 on bf16 casts of their inputs; the parameters stay fp32 (the master
// weights the optimizer updates in fp32), and the backward pass, run after the
// scope closes, sends fp32 gradients to them through the casts. Autocast caches
// the bf16 cast of each fp32 leaf parameter for the life of the outermost
// scope, so a weight used twice is cast once; the cache is cleared when that
// scope closes (libtorch leaves that to the caller outside Python).
//
// A scope for fp32 does nothing, so callers need no branch. Nested scopes
// restore what they found.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace ellm {

// A training precision by name: "fp32" → kFloat, "bf16" → kBFloat16, "auto" → bf16 where
// `device` computes bf16 natively (util/device.h's bf16_supported: CUDA, or a CPU with
// AVX512-BF16 / AMX) and fp32 elsewhere, since emulated bf16 matmuls are slower than fp32.
// Errors name `what`.
c10::ScalarType parse_training_precision(const std::string& name, const std::string& what,
                                         const c10::Device& device = c10::Device(c10::kCPU));

class AutocastScope {
 public:
  explicit AutocastScope(c10::ScalarType precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  bool prev_cpu_ = false, prev_cuda_ = false;
  c10::ScalarType prev_cpu_dtype_ = c10::ScalarType::BFloat16, prev_cuda_dtype_ = c10::ScalarType::Half;
};

}  // namespace ellm
