#pragma once
// The decoder LLM (the ELLM-rele teacher): the Qwen2 / LLaMA family built from a
// Hugging Face config.json (DESIGN §3).
//
//   embed_tokens → N × [RMSNorm → GQA attention (RoPE, optional q/k/v bias) → +
//                       RMSNorm → SwiGLU MLP → +] → RMSNorm → lm_head (tied or not)
//
// The module tree *is* the Hugging Face key tree: named_parameters() yields
// "model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", …,
// "model.norm.weight", "lm_head.weight" (absent when tied), so that loading and
// saving need no mapping table. Parameters are created without touching memory
// when the options name the meta device (a 7B model can be counted and planned).
//
// Numerics follow transformers' eager implementation: RMSNorm and softmax in
// fp32, RoPE tables in fp32 cast to the compute dtype, logits returned in fp32.
// The compute dtype is the parameters' dtype (fp32, bf16 or fp16).
#include <torch/torch.h>

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ellm {

using json = nlohmann::json;

// rope_scaling {"rope_type": "llama3", "factor", "low_freq_factor", "high_freq_factor",
// "original_max_position_embeddings"} (LLaMA-3.1 and later). Other types are refused.
struct RopeScaling {
  std::string type = "llama3";
  double factor = 8.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position_embeddings = 8192;
};

struct DecoderConfig {
  std::string model_type = "qwen2";  // "qwen2" | "llama"
  int64_t vocab_size = 0, hidden_size = 0, intermediate_size = 0, num_hidden_layers = 0;
  int64_t num_attention_heads = 0, num_key_value_heads = 0;
  int64_t head_dim = 0;  // hidden_size / num_attention_heads unless given
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-6, rope_theta = 10000.0, initializer_range = 0.02;
  bool tie_word_embeddings = false;
  // llama: bias on q, k, v and o when true. qwen2 always has q/k/v biases (and no o bias),
  // which is what its config.json leaves implicit.
  bool attention_bias = false;
  bool mlp_bias = false;
  std::optional<RopeScaling> rope_scaling;
  std::string torch_dtype = "float32";
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config.json's eos_token_id (int or list)
  json extra = json::object();         // other keys, written back unchanged

  bool qkv_bias() const { return model_type == "qwen2" || attention_bias; }
  bool o_bias() const { return model_type == "llama" && attention_bias; }

  // Errors name `where` (the file) and the field.
  static DecoderConfig from_json(const json& j, const std::string& where);
  // A model directory (its config.json) or a config file.
  static DecoderConfig load(const std::string& dir_or_file);
  json to_json() const;
  void validate(const std::string& where) const;
};

// Per-layer key/value tensors [B, kv_heads, capacity, head_dim]; `length` positions are valid.
// reserve() preallocates so that decoding appends in place instead of concatenating.
struct KVCache {
  std::vector<torch::Tensor> keys, values;
  int64_t length = 0;
  int64_t capacity = 0;  // 0: grow by concatenation
  void reserve(int64_t total_positions) { capacity = total_positions; }
  void clear() {
    keys.clear();
    values.clear();
    length = 0;
  }
};

// A module holding one tensor under "weight" (embed_tokens, lora_A, lora_B).
class WeightImpl : public torch::nn::Module {
 public:
  WeightImpl(std::vector<int64_t> shape, const torch::TensorOptions& options);
  torch::Tensor weight;
};
TORCH_MODULE(Weight);

// Linear layer y = x Wᵀ + b, optionally with a LoRA branch (models/lora.h):
//   y += dropout(x) Aᵀ Bᵀ · scaling,  A: [r, in] under "lora_A.weight", B: [out, r] under "lora_B.weight".
class LinearImpl : public torch::nn::Module {
 public:
  LinearImpl(int64_t in_features, int64_t out_features, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);

  int64_t in_features, out_features;
  torch::Tensor weight, bias;  // bias undefined when absent
  // LoRA state (lora.h manages it).
  Weight lora_A{nullptr}, lora_B{nullptr};
  double lora_scaling = 0.0, lora_dropout = 0.0;
  bool has_lora() const { return !lora_A.is_empty(); }
};
TORCH_MODULE(Linear);

// Linear layers that read the same input (q/k/v, gate/up), computed as one matmul. The HF
// parameters stay registered where they are; the group re-points them into one buffer per
// kind (weights, biases) so that the fused weight *is* the parameters: no copy, no extra
// memory, and nothing to invalidate when they change in place (optimizer steps, loading,
// LoRA merge). forward() picks, per call:
//   no gradients wanted, no LoRA  → one matmul on the shared buffers (rebound first when a
//                                   part's storage was replaced, e.g. by Module::to);
//   gradients wanted, no LoRA     → one matmul on the concatenated parameters (autograd
//                                   routes each part's gradient to its parameter);
//   any part with LoRA            → the parts one by one (each with its adapter).
class LinearGroup {
 public:
  LinearGroup() = default;
  explicit LinearGroup(std::vector<Linear> parts);
  // One output [.., out_i] per part (views of one fused output when fused).
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  // True when the parts share one weight buffer and one bias buffer (the fused inference path).
  bool bound() const;
  // false: always the parts one by one (the reference the fused paths are tested against).
  bool enabled = true;

 private:
  std::vector<Linear> parts_;
  std::vector<int64_t> sizes_;
  torch::Tensor weight_, bias_;  // the shared buffers; undefined on the meta device
  void bind();
};

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight;
  double eps;
};
TORCH_MODULE(RMSNorm);

// Rotary tables for one forward pass: cos/sin [B or 1, T, head_dim] in the compute dtype
// (last dim contiguous; views of the decoder's cached table).
struct Rope {
  torch::Tensor cos, sin;
};

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  // x [B,T,H]; bias: additive mask [B,1,1,T,S] fp32 (S = past + T); cache slot `layer`.
  torch::Tensor forward(const torch::Tensor& x, const Rope& rope, const torch::Tensor& bias, KVCache* cache,
                        int64_t layer);
  Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};
  int64_t num_heads, num_kv_heads, head_dim;
  LinearGroup qkv;  // q_proj, k_proj, v_proj as one matmul
};
TORCH_MODULE(Attention);

class MLPImpl : public torch::nn::Module {
 public:
  MLPImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  Linear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
  LinearGroup gate_up;  // gate_proj, up_proj as one matmul
};
TORCH_MODULE(MLP);

class DecoderLayerImpl : public torch::nn::Module {
 public:
  DecoderLayerImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const Rope& rope, const torch::Tensor& bias, KVCache* cache,
                        int64_t layer);
  Attention self_attn{nullptr};
  MLP mlp{nullptr};
  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
};
TORCH_MODULE(DecoderLayer);

// The "model." subtree.
class DecoderBodyImpl : public torch::nn::Module {
 public:
  DecoderBodyImpl(const DecoderConfig& config, const torch::TensorOptions& options);
  Weight embed_tokens{nullptr};
  std::vector<DecoderLayer> layers;
  RMSNorm norm{nullptr};
};
TORCH_MODULE(DecoderBody);

class DecoderImpl : public torch::nn::Module {
 public:
  // Parameters are allocated with `options` (dtype, device; kMeta allocates nothing)
  // and left uninitialised; call init_weights() or load weights.
  DecoderImpl(DecoderConfig config, const torch::TensorOptions& options = {});

  // input_ids [B,T] int64; attention_mask [B, past+T] (1 = token, 0 = padding) or
  // undefined (all tokens). With a cache, keys/values of this call are appended to it
  // and positions continue from the non-padding tokens already seen. Returns logits
  // [B,T',V] fp32 (fp64 for an fp64 model), where T' = logits_to_keep (the last positions) when > 0, else T.
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                        KVCache* cache = nullptr, int64_t logits_to_keep = 0);
  // The final hidden states [B,T,H] (after the last norm), in the compute dtype.
  torch::Tensor hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask = {},
                              KVCache* cache = nullptr);
  // hidden [.., H] → logits [.., V] fp32.
  torch::Tensor logits(const torch::Tensor& hidden);
  // Cross-entropy of logits(hidden) against targets without materialising the [N, V] logits
  // (models/decoder_ops.h's linear_cross_entropy; the plain logits + cross_entropy when the
  // head carries LoRA). hidden [N,H], targets [N] (ignore_index: no loss); summed when `sum`,
  // else the mean over counted rows. fp32 (fp64 for an fp64 model).
  torch::Tensor lm_loss(const torch::Tensor& hidden, const torch::Tensor& targets, bool sum = false,
                        int64_t ignore_index = -100);

  // Fused q/k/v and gate/up projections (LinearGroup) on or off; on by default. Off computes
  // every projection on its own, as the plain formulation (tests compare the two).
  void set_fused_projections(bool on);

  // Recompute each layer in backward instead of keeping its activations.
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }
  bool gradient_checkpointing() const { return checkpointing_; }

  // HF's _init_weights: Linear/Embedding weights ~ N(0, initializer_range), biases 0, norms 1.
  void init_weights(uint64_t seed);

  // Base parameters under HF names (LoRA tensors excluded).
  std::vector<std::pair<std::string, torch::Tensor>> base_parameters() const;
  int64_t num_parameters() const;  // base parameters

  const DecoderConfig& config() const { return config_; }
  torch::ScalarType dtype() const;
  torch::Device device() const;

  DecoderBody model{nullptr};
  Linear lm_head{nullptr};  // null when tied

 private:
  DecoderConfig config_;
  torch::Tensor inv_freq_;  // [head_dim/2] fp32, on the device
  bool checkpointing_ = false;
  // cos/sin of positions [0, P): [P, 2, head_dim] in the compute dtype, grown on demand.
  torch::Tensor rope_table_;
  std::mutex rope_mutex_;
  torch::Tensor rope_table(int64_t positions);
  Rope rope_for(const torch::Tensor& positions, int64_t past, int64_t T);
};
TORCH_MODULE(Decoder);

// Inverse RoPE frequencies [head_dim/2] (fp32, CPU) with the config's theta and scaling.
torch::Tensor rope_inv_freq(const DecoderConfig& config);

// A freshly initialised model (weights ~ N(0, initializer_range) from `seed`).
Decoder make_decoder(const DecoderConfig& config, torch::Dtype dtype, torch::Device device, uint64_t seed);

// Strict load of a HF model directory (io/checkpoint.h's load_strict): every tensor
// used once, every parameter filled, shapes checked; errors name the tensor.
Decoder load_decoder(const std::string& dir, torch::Dtype dtype, torch::Device device);

// Writes config.json + model.safetensors (or shards above max_shard_bytes + index),
// base parameters only, in their current dtype.
void save_decoder(Decoder& model, const std::string& dir, uint64_t max_shard_bytes = 5ull << 30);

// Torch dtype ↔ config.json's torch_dtype ("float32", "bfloat16", "float16").
std::string hf_dtype_name(torch::Dtype dtype);
torch::Dtype hf_dtype_from_name(const std::string& name, const std::string& where);

}  // namespace ellm
