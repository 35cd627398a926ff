#include "ellm/util/autocast.h"

#include <ATen/autocast_mode.h>

#include "ellm/util/device.h"
#include "ellm/util/error.h"

namespace ellm {

c10::ScalarType parse_training_precision(const std::string& name, const std::string& what,
                                         const c10::Device& device) {
  if (name == "fp32") return c10::kFloat;
  if (name == "bf16") return c10::kBFloat16;
  if (name == "auto") return bf16_supported(device) ? c10::kBFloat16 : c10::kFloat;
  fail("{}: precision '{}' is not fp32, bf16 or auto", what, name);
}

AutocastScope::AutocastScope(c10::ScalarType precision) {
  if (precision == c10::kFloat) return;
  ELLM_CHECK(precision == c10::kBFloat16, "autocast: only bf16 mixed precision is supported, not {}",
             c10::toString(precision));
  active_ = true;
  prev_cpu_ = at::autocast::is_cpu_enabled();
  prev_cuda_ = at::autocast::is_enabled();
  prev_cpu_dtype_ = at::autocast::get_autocast_cpu_dtype();
  prev_cuda_dtype_ = at::autocast::get_autocast_gpu_dtype();
  at::autocast::set_autocast_cpu_dtype(precision);
  at::autocast::set_autocast_gpu_dtype(precision);
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_enabled(true);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(prev_cpu_);
  at::autocast::set_enabled(prev_cuda_);
  at::autocast::set_autocast_cpu_dtype(prev_cpu_dtype_);
  at::autocast::set_autocast_gpu_dtype(prev_cuda_dtype_);
}

}  // namespace ellm
