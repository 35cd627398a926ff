#pragma once
// LoRA on the decoder's linear layers, interchangeable with Hugging Face PEFT:
//   W x + (alpha / r) · B A dropout(x)      (alpha / sqrt(r) with use_rslora)
// A [r, in] is initialised kaiming-uniform (a = √5, PEFT's default), B [out, r] zero,
// so an adapter starts as the identity. Files (PEFT layout):
//   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout",
//                               "target_modules", "task_type": "CAUSAL_LM", ...}
//   adapter_model.safetensors  base_model.model.<module>.lora_A.weight / .lora_B.weight
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ellm/models/decoder.h"

namespace ellm {

struct LoraConfig {
  int64_t r = 16;
  double alpha = 32.0;
  double dropout = 0.05;
  // Module names matched as PEFT does: a module is targeted when its dotted name equals
  // an entry or ends with "." + entry ("q_proj" hits every layer's q_proj).
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj",
                                             "gate_proj", "up_proj", "down_proj"};
  bool use_rslora = false;
  std::string base_model_name_or_path;

  double scaling() const;
  json to_peft_json() const;
  static LoraConfig from_peft_json(const json& j, const std::string& where);
};

// Adds LoRA branches to every targeted Linear and freezes every base parameter
// (requires_grad = false). Errors when nothing matches or a module already has LoRA.
void apply_lora(Decoder& model, const LoraConfig& config, uint64_t seed);

// The LoRA tensors under PEFT's names, in module order.
std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(Decoder& model);

// Writes adapter_config.json + adapter_model.safetensors into dir.
void save_adapter(Decoder& model, const LoraConfig& config, const std::string& dir);

// Reads an adapter dir, applies LoRA with its config and fills A/B strictly (every
// tensor used, every branch filled, shapes checked). Returns the adapter's config.
LoraConfig load_adapter(Decoder& model, const std::string& dir);

// W += scaling · B A for every branch, then removes the branches: a plain model.
void merge_lora(Decoder& model);

// True when dir holds a PEFT adapter.
bool has_adapter(const std::string& dir);

}  // namespace ellm
