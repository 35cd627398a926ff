#pragma once
// Learning-rate schedule: linear warmup from 0 to `lr` over `warmup_steps`,
// then cosine decay to `lr * min_ratio` at `total_steps`:
//   s < w:  lr · (s+1)/w
//   s ≥ w:  lr · (min + (1−min) · ½(1 + cos(π · (s−w)/(T−w))))
// A pure function of the step, so resuming needs no scheduler state.
#include <cstdint>

namespace ellm {

struct CosineSchedule {
  double lr = 1e-3;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double min_ratio = 0.1;
  double at(int64_t step) const;  // lr for 0-based optimizer step `step`
};

}  // namespace ellm
