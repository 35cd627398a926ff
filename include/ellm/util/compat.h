#pragma once
// Differences between the libtorch versions ellm builds against (Debian's 1.13
// CPU build and official 2.x CUDA builds) live here and nowhere else.
#include <torch/version.h>

#define ELLM_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) || (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

// at::scaled_dot_product_attention exists from 2.0; before that ellm writes
// attention as matmul + softmax (models/attention.h chooses).
#define ELLM_HAS_SDPA ELLM_TORCH_AT_LEAST(2, 0)

namespace ellm::compat {
inline const char* torch_version() { return TORCH_VERSION; }
}  // namespace ellm::compat
