#pragma once
// Memory needed per GPU to fine-tune a decoder with ellm's trainer (replicated data
// parallel: every rank holds the weights, gradients and optimizer states of the
// trainable parameters; the global batch is split across ranks).
//
// Counts (bytes):
//   weights      every base parameter in the weight dtype (+ LoRA A/B in fp32)
//   gradients    trainable parameters, in their dtype
//   optimizer    AdamW: two moments per trainable parameter, fp32 (train/adamw.h)
//   activations  what backward keeps, from the decoder's own forward (models/decoder.cpp),
//                per layer and token, for micro_batch = ceil(batch / gpus) sequences of seq
//                tokens; with gradient checkpointing only each layer's input is kept plus
//                one layer's activations during its recomputation. Plus the fp32 logits and
//                their log-softmax for the loss.
// It is an estimate of the tensors ellm allocates, not of allocator fragmentation or
// framework workspace (add ~10% headroom).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "ellm/models/decoder.h"
#include "ellm/models/lora.h"

namespace ellm {

struct MemoryPlanInput {
  DecoderConfig config;
  int64_t gpus = 1, batch = 1, seq = 1024;
  bool lora = true;
  LoraConfig lora_config;
  torch::Dtype weight_dtype = torch::kBFloat16;
  bool gradient_checkpointing = false;
};

struct MemoryPlan {
  int64_t total_params = 0, trainable_params = 0, micro_batch = 0;
  double weights = 0, gradients = 0, optimizer = 0, activations = 0, logits = 0;
  double total() const { return weights + gradients + optimizer + activations + logits; }
  json to_json() const;
};

// Parameter counts come from building the model on the meta device (nothing allocated).
MemoryPlan plan_memory(const MemoryPlanInput& input);

}  // namespace ellm
