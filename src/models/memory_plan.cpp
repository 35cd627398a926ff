// Memory plan for fine-tuning a decoder (see memory_plan.h for what is counted).
#include "ellm/models/memory_plan.h"

#include <algorithm>

namespace ellm {

json MemoryPlan::to_json() const {
  return {{"total_params", total_params}, {"trainable_params", trainable_params}, {"micro_batch", micro_batch},
          {"bytes", {{"weights", weights}, {"gradients", gradients}, {"optimizer", optimizer},
                     {"activations", activations}, {"logits", logits}, {"total", total()}}}};
}

MemoryPlan plan_memory(const MemoryPlanInput& in) {
  const DecoderConfig& c = in.config;
  MemoryPlan plan;
  Decoder model(c, torch::TensorOptions().dtype(in.weight_dtype).device(torch::kMeta));
  plan.total_params = model->num_parameters();
  const double s = static_cast<double>(c10::elementSize(in.weight_dtype));
  plan.weights = plan.total_params * s;
  if (in.lora) {
    apply_lora(model, in.lora_config, 0);
    for (auto& [_, p] : lora_parameters(model)) plan.trainable_params += p.numel();
    plan.weights += plan.trainable_params * 4.0;    // fp32 A/B
    plan.gradients = plan.trainable_params * 4.0;
  } else {
    plan.trainable_params = plan.total_params;
    plan.gradients = plan.trainable_params * s;
  }
  plan.optimizer = plan.trainable_params * 8.0;  // exp_avg + exp_avg_sq, fp32

  plan.micro_batch = (in.batch + in.gpus - 1) / in.gpus;
  const double tokens = static_cast<double>(plan.micro_batch) * in.seq;
  const double H = c.hidden_size, I = c.intermediate_size, qd = c.num_attention_heads * c.head_dim,
               kd = c.num_key_value_heads * c.head_dim, nh = c.num_attention_heads, S = in.seq;
  // Saved for backward per token in one layer: two RMSNorms (fp32 intermediates + cast),
  // RoPE'd q/k and their rotations, the grouped q copy, v, the attention output, the fp32
  // softmax output and the probabilities over S keys, and the MLP's gate/up/silu/product.
  double per_token_layer = 2 * (8 + s) * H + 4 * s * qd + 3 * s * kd + nh * S * (4 + s) + 4 * s * I;
  if (in.lora && in.lora_config.dropout > 0) {
    // Dropped-out inputs of each targeted module (q/k/v/gate/up see H, o sees qd, down sees I).
    double extra = 0;
    for (const auto& t : in.lora_config.target_modules) {
      if (t == "q_proj" || t == "k_proj" || t == "v_proj" || t == "gate_proj" || t == "up_proj") extra += H;
      else if (t == "o_proj") extra += qd;
      else if (t == "down_proj") extra += I;
    }
    per_token_layer += (s + 1) * extra;  // values + the boolean mask
  }
  const double layers = static_cast<double>(c.num_hidden_layers);
  if (in.gradient_checkpointing) plan.activations = tokens * (layers * s * H + per_token_layer);
  else plan.activations = tokens * layers * per_token_layer;
  plan.logits = tokens * c.vocab_size * (8 + s);  // lm_head output, fp32 logits, log-softmax
  return plan;
}

}  // namespace ellm
