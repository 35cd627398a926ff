// The Qwen2 / LLaMA decoder: modules, forward pass, KV cache, gradient checkpointing.
#include "ellm/models/decoder.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <mutex>

#include "ellm/util/error.h"

namespace ellm {
namespace F = torch::nn::functional;

WeightImpl::WeightImpl(std::vector<int64_t> shape, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty(shape, options));
}

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias, const torch::TensorOptions& options)
    : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}, options));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}, options));
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y = torch::linear(x, weight, bias);
  if (has_lora()) {
    torch::Tensor h = x;
    if (lora_dropout > 0 && is_training()) h = torch::dropout(h, lora_dropout, /*train=*/true);
    // LoRA weights are fp32 (lora.h); compute in the input's dtype.
    auto dt = x.scalar_type();
    y = y + torch::linear(torch::linear(h, lora_A->weight.to(dt)), lora_B->weight.to(dt)) * lora_scaling;
  }
  return y;
}

RMSNormImpl::RMSNormImpl(int64_t dim, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", options.device().is_meta() ? torch::empty({dim}, options)
                                                                   : torch::ones({dim}, options));
}

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  // As transformers: normalise in fp32 (fp64 stays fp64), cast back, then scale.
  torch::Tensor h = x.scalar_type() == torch::kFloat64 ? x : x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

namespace {

torch::Tensor rotate_half(const torch::Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

// Appends this call's keys/values [B,KV,T,D] to the cache slot and returns all of them.
std::pair<torch::Tensor, torch::Tensor> cache_append(KVCache& cache, int64_t layer, const torch::Tensor& k,
                                                     const torch::Tensor& v) {
  int64_t past = cache.length, t = k.size(2);
  if (static_cast<int64_t>(cache.keys.size()) <= layer) {
    cache.keys.resize(layer + 1);
    cache.values.resize(layer + 1);
  }
  auto& ks = cache.keys[layer];
  auto& vs = cache.values[layer];
  if (cache.capacity > 0 && past + t <= cache.capacity) {
    if (!ks.defined()) {
      ELLM_CHECK(past == 0, "KV cache layer {} is empty but the cache holds {} positions", layer, past);
      auto shape = k.sizes().vec();
      shape[2] = cache.capacity;
      ks = torch::empty(shape, k.options());
      vs = torch::empty(shape, v.options());
    }
    ks.narrow(2, past, t).copy_(k);
    vs.narrow(2, past, t).copy_(v);
    return {ks.narrow(2, 0, past + t), vs.narrow(2, 0, past + t)};
  }
  if (ks.defined()) {
    ks = torch::cat({ks.narrow(2, 0, past), k}, 2);
    vs = torch::cat({vs.narrow(2, 0, past), v}, 2);
  } else {
    ks = k;
    vs = v;
  }
  cache.capacity = 0;  // grown past the reservation: concatenate from now on
  return {ks, vs};
}

}  // namespace

AttentionImpl::AttentionImpl(const DecoderConfig& c, const torch::TensorOptions& options)
    : num_heads(c.num_attention_heads), num_kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
  q_proj = register_module("q_proj", Linear(c.hidden_size, num_heads * head_dim, c.qkv_bias(), options));
  k_proj = register_module("k_proj", Linear(c.hidden_size, num_kv_heads * head_dim, c.qkv_bias(), options));
  v_proj = register_module("v_proj", Linear(c.hidden_size, num_kv_heads * head_dim, c.qkv_bias(), options));
  o_proj = register_module("o_proj", Linear(num_heads * head_dim, c.hidden_size, c.o_bias(), options));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const Rope& rope, const torch::Tensor& bias,
                                     KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), H = num_heads, KV = num_kv_heads, D = head_dim, G = H / KV;
  torch::Tensor q = q_proj(x).view({B, T, H, D}).transpose(1, 2);
  torch::Tensor k = k_proj(x).view({B, T, KV, D}).transpose(1, 2);
  torch::Tensor v = v_proj(x).view({B, T, KV, D}).transpose(1, 2);
  torch::Tensor cos = rope.cos.unsqueeze(1), sin = rope.sin.unsqueeze(1);  // [B,1,T,D]
  q = q * cos + rotate_half(q) * sin;
  k = k * cos + rotate_half(k) * sin;
  if (cache) std::tie(k, v) = cache_append(*cache, layer, k, v);
  const int64_t S = k.size(2);
  // Grouped-query attention without repeating K/V: query head h uses kv head h / G, so the
  // G query heads of one kv head are stacked along the time axis of one matmul.
  torch::Tensor qg = q.reshape({B, KV, G * T, D});
  torch::Tensor scores = torch::matmul(qg, k.transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(D)));
  // Softmax in fp32 (fp64 for an fp64 model: gradient checks).
  scores = scores.view({B, KV, G, T, S}).to(x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32);
  if (bias.defined()) scores = scores + bias;
  torch::Tensor probs = torch::softmax(scores, -1).to(x.scalar_type());
  torch::Tensor out = torch::matmul(probs.view({B, KV, G * T, S}), v);  // [B,KV,G*T,D]
  out = out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
  return o_proj(out);
}

MLPImpl::MLPImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias, options));
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  return down_proj(torch::silu(gate_proj(x)) * up_proj(x));
}

DecoderLayerImpl::DecoderLayerImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", Attention(c, options));
  mlp = register_module("mlp", MLP(c, options));
  input_layernorm = register_module("input_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
  post_attention_layernorm =
      register_module("post_attention_layernorm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

torch::Tensor DecoderLayerImpl::forward(const torch::Tensor& x, const Rope& rope, const torch::Tensor& bias,
                                        KVCache* cache, int64_t layer) {
  torch::Tensor h = x + self_attn(input_layernorm(x), rope, bias, cache, layer);
  return h + mlp(post_attention_layernorm(h));
}

DecoderBodyImpl::DecoderBodyImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  embed_tokens = register_module("embed_tokens", Weight(std::vector<int64_t>{c.vocab_size, c.hidden_size}, options));
  auto list = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    layers.push_back(DecoderLayer(c, options));
    list->push_back(layers.back());
  }
  norm = register_module("norm", RMSNorm(c.hidden_size, c.rms_norm_eps, options));
}

torch::Tensor rope_inv_freq(const DecoderConfig& c) {
  auto idx = torch::arange(0, c.head_dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(c.head_dim);
  torch::Tensor inv = 1.0 / torch::pow(torch::tensor(c.rope_theta, torch::kFloat32), idx);
  if (c.rope_scaling) {
    // transformers' _compute_llama3_parameters: long wavelengths scaled by 1/factor, short
    // ones kept, a smooth interpolation in between.
    const RopeScaling& s = *c.rope_scaling;
    double old_len = static_cast<double>(s.original_max_position_embeddings);
    double low_wavelen = old_len / s.low_freq_factor, high_wavelen = old_len / s.high_freq_factor;
    torch::Tensor wavelen = 2 * M_PI / inv;
    torch::Tensor scaled = torch::where(wavelen > low_wavelen, inv / s.factor, inv);
    torch::Tensor smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    torch::Tensor smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    torch::Tensor medium = (wavelen >= high_wavelen).logical_and(wavelen <= low_wavelen);
    inv = torch::where(medium, smoothed, scaled);
  }
  return inv;
}

DecoderImpl::DecoderImpl(DecoderConfig config, const torch::TensorOptions& options) : config_(std::move(config)) {
  config_.validate("decoder config");
  torch::TensorOptions opts = options;
  if (!opts.has_dtype()) opts = opts.dtype(torch::kFloat32);
  model = register_module("model", DecoderBody(config_, opts));
  if (!config_.tie_word_embeddings)
    lm_head = register_module("lm_head", Linear(config_.hidden_size, config_.vocab_size, false, opts));
  inv_freq_ = rope_inv_freq(config_).to(opts.device());
}

torch::ScalarType DecoderImpl::dtype() const { return model->embed_tokens->weight.scalar_type(); }
torch::Device DecoderImpl::device() const { return model->embed_tokens->weight.device(); }

Rope DecoderImpl::rope_for(const torch::Tensor& positions) {
  torch::Tensor freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq_;  // [B,T,D/2]
  torch::Tensor emb = torch::cat({freqs, freqs}, -1);
  return {emb.cos().to(dtype()), emb.sin().to(dtype())};
}

namespace {

// Recomputes one decoder layer during backward instead of storing its activations
// (torch.utils.checkpoint's reentrant variant). The RNG state is captured in forward
// and replayed so that dropout draws the same masks in the recomputation.
struct LayerCheckpoint : public torch::autograd::Function<LayerCheckpoint> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& cos, const torch::Tensor& sin, const torch::Tensor& bias,
                               DecoderLayerImpl* layer, int64_t index) {
    ctx->save_for_backward({hidden});
    ctx->saved_data["cos"] = cos;
    ctx->saved_data["sin"] = sin;
    ctx->saved_data["has_bias"] = bias.defined();
    if (bias.defined()) ctx->saved_data["bias"] = bias;
    ctx->saved_data["layer"] = reinterpret_cast<int64_t>(layer);
    ctx->saved_data["index"] = index;
    at::Generator gen = at::globalContext().defaultGenerator(hidden.device());
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      ctx->saved_data["rng"] = gen.get_state();
    }
    return layer->forward(hidden, Rope{cos, sin}, bias, nullptr, index);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    torch::Tensor hidden = ctx->get_saved_variables()[0];
    auto* layer = reinterpret_cast<DecoderLayerImpl*>(ctx->saved_data["layer"].toInt());
    Rope rope{ctx->saved_data["cos"].toTensor(), ctx->saved_data["sin"].toTensor()};
    torch::Tensor bias = ctx->saved_data["has_bias"].toBool() ? ctx->saved_data["bias"].toTensor() : torch::Tensor();
    torch::Tensor x = hidden.detach().requires_grad_(true);
    torch::Tensor out;
    {
      torch::AutoGradMode grad_on(true);
      at::Generator gen = at::globalContext().defaultGenerator(hidden.device());
      torch::Tensor now;
      {
        std::lock_guard<std::mutex> lock(gen.mutex());
        now = gen.get_state();
        gen.set_state(ctx->saved_data["rng"].toTensor());
      }
      out = layer->forward(x, rope, bias, nullptr, ctx->saved_data["index"].toInt());
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(now);
    }
    torch::autograd::backward({out}, {grad_out[0]});
    return {x.grad(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor DecoderImpl::hidden_states(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                         KVCache* cache) {
  ELLM_CHECK(input_ids.dim() == 2, "decoder input_ids must be [batch, time], got {} dims", input_ids.dim());
  const int64_t B = input_ids.size(0), T = input_ids.size(1);
  const int64_t past = cache ? cache->length : 0, S = past + T;
  const torch::Device dev = device();
  torch::Tensor ids = input_ids.to(dev, torch::kInt64);
  torch::Tensor mask;
  if (attention_mask.defined()) {
    ELLM_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == S,
               "attention_mask must be [batch, past + time] = [{}, {}], got {}", B, S,
               c10::str(attention_mask.sizes()));
    mask = attention_mask.to(dev, torch::kInt64);
  }
  // Positions count real tokens only, so left padding does not shift them (as HF generate).
  torch::Tensor positions;
  if (mask.defined()) {
    positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1).narrow(1, past, T);
  } else {
    positions = torch::arange(past, S, torch::TensorOptions().dtype(torch::kInt64).device(dev)).unsqueeze(0).expand({B, T});
  }
  Rope rope = rope_for(positions);
  // Additive mask [B,1,1,T,S]: causal and padding. A large finite negative (not -inf) keeps
  // rows of padding queries finite.
  torch::Tensor bias;
  if (T > 1 || mask.defined()) {
    auto iopts = torch::TensorOptions().dtype(torch::kInt64).device(dev);
    torch::Tensor allowed = torch::arange(S, iopts).unsqueeze(0) <= (torch::arange(T, iopts) + past).unsqueeze(1);  // [T,S]
    allowed = allowed.unsqueeze(0);
    if (mask.defined()) allowed = allowed.logical_and(mask.unsqueeze(1) != 0);  // [B,T,S]
    bias = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(dev))
               .masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest())
               .unsqueeze(1)
               .unsqueeze(1);
  }
  torch::Tensor h = torch::embedding(model->embed_tokens->weight, ids);
  const bool checkpoint = checkpointing_ && is_training() && torch::GradMode::is_enabled() && cache == nullptr;
  if (checkpoint && !h.requires_grad()) h = h.detach().requires_grad_(true);  // so LoRA grads flow through
  for (int64_t i = 0; i < static_cast<int64_t>(model->layers.size()); ++i) {
    if (checkpoint) h = LayerCheckpoint::apply(h, rope.cos, rope.sin, bias, model->layers[i].get(), i);
    else h = model->layers[i]->forward(h, rope, bias, cache, i);
  }
  if (cache) cache->length = S;
  return model->norm(h);
}

torch::Tensor DecoderImpl::logits(const torch::Tensor& hidden) {
  torch::Tensor out = lm_head.is_empty() ? torch::linear(hidden, model->embed_tokens->weight) : lm_head(hidden);
  // fp32 for fp32/bf16/fp16 models; fp64 models (gradient checks) keep fp64.
  return out.scalar_type() == torch::kFloat64 ? out : out.to(torch::kFloat32);
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                   KVCache* cache, int64_t logits_to_keep) {
  torch::Tensor h = hidden_states(input_ids, attention_mask, cache);
  if (logits_to_keep > 0 && logits_to_keep < h.size(1)) h = h.narrow(1, h.size(1) - logits_to_keep, logits_to_keep);
  return logits(h);
}

std::vector<std::pair<std::string, torch::Tensor>> DecoderImpl::base_parameters() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters()) {
    if (item.key().find(".lora_") != std::string::npos) continue;
    out.emplace_back(item.key(), item.value());
  }
  return out;
}

int64_t DecoderImpl::num_parameters() const {
  int64_t n = 0;
  for (const auto& [_, p] : base_parameters()) n += p.numel();
  return n;
}

void DecoderImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  // Drawn on the CPU in fp32 in a fixed order, so that a seed gives the same model
  // on every device and in every dtype.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, p] : base_parameters()) {
    if (name.find("norm") != std::string::npos) {
      p.fill_(1.0);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      p.zero_();
    } else {
      torch::Tensor w = torch::empty(p.sizes(), torch::kFloat32);
      w.normal_(0.0, config_.initializer_range, gen);
      p.copy_(w);
    }
  }
}

Decoder make_decoder(const DecoderConfig& config, torch::Dtype dtype, torch::Device device, uint64_t seed) {
  Decoder model(config, torch::TensorOptions().dtype(dtype).device(device));
  model->init_weights(seed);
  return model;
}

}  // namespace ellm
