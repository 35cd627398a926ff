// The Qwen2 / LLaMA decoder: modules, forward pass, KV cache, gradient checkpointing.
#include "ellm/models/decoder.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <mutex>

#include "ellm/models/batched_matmul.h"
#include "ellm/models/decoder_ops.h"
#include "ellm/models/small_linear.h"
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
  torch::Tensor y = small_linear(x, weight, bias);  // decode steps; undefined where it does not apply
  if (!y.defined()) y = torch::linear(x, weight, bias);
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
  return decoder_ops::rms_norm(x, weight, eps);
}

LinearGroup::LinearGroup(std::vector<Linear> parts) : parts_(std::move(parts)) {
  for (const auto& p : parts_) sizes_.push_back(p->out_features);
  bind();
}

bool LinearGroup::bound() const {
  if (!weight_.defined()) return false;
  const int64_t in = parts_.front()->in_features, esize = static_cast<int64_t>(weight_.element_size());
  int64_t off = 0;
  for (const auto& p : parts_) {
    const torch::Tensor& w = p->weight;
    if (w.scalar_type() != weight_.scalar_type() || w.device() != weight_.device() ||
        w.data_ptr() != static_cast<char*>(weight_.data_ptr()) + off * in * esize)
      return false;
    if (bias_.defined() && (!p->bias.defined() || p->bias.scalar_type() != bias_.scalar_type() ||
                            p->bias.data_ptr() != static_cast<char*>(bias_.data_ptr()) + off * esize))
      return false;
    off += p->out_features;
  }
  return true;
}

void LinearGroup::bind() {
  static std::mutex mutex;  // two inference threads finding the group unbound: one binds
  std::lock_guard<std::mutex> lock(mutex);
  if (parts_.empty() || bound()) return;
  const torch::Tensor& w0 = parts_.front()->weight;
  if (w0.device().is_meta()) return;  // nothing to share on the meta device (planning)
  int64_t total = 0, with_bias = 0;
  for (const auto& p : parts_) {
    if (p->in_features != parts_.front()->in_features || p->weight.scalar_type() != w0.scalar_type() ||
        p->weight.device() != w0.device() || !p->weight.is_contiguous())
      return;
    total += p->out_features;
    with_bias += p->bias.defined();
  }
  if (with_bias != 0 && with_bias != static_cast<int64_t>(parts_.size())) return;
  // The buffers must be ordinary tensors even when the first use is under InferenceMode:
  // the parameters become views of them.
  c10::InferenceMode not_inference(false);
  torch::NoGradGuard no_grad;
  torch::Tensor w = torch::empty({total, parts_.front()->in_features}, w0.options());
  torch::Tensor b = with_bias ? torch::empty({total}, parts_.front()->bias.options()) : torch::Tensor();
  int64_t off = 0;
  for (auto& p : parts_) {
    torch::Tensor ws = w.narrow(0, off, p->out_features);
    ws.copy_(p->weight);
    p->weight.set_data(ws);
    if (b.defined()) {
      torch::Tensor bs = b.narrow(0, off, p->out_features);
      bs.copy_(p->bias);
      p->bias.set_data(bs);
    }
    off += p->out_features;
  }
  weight_ = w;
  bias_ = b;
}

std::vector<torch::Tensor> LinearGroup::forward(const torch::Tensor& x) {
  bool lora = false, params_grad = false;
  for (const auto& p : parts_) {
    lora = lora || p->has_lora();
    params_grad = params_grad || p->weight.requires_grad() || (p->bias.defined() && p->bias.requires_grad());
  }
  params_grad = params_grad && torch::GradMode::is_enabled();
  if (enabled && !lora) {
    torch::Tensor w, b;
    if (!params_grad) {
      if (!bound()) bind();
      if (bound()) {
        w = weight_;
        b = bias_;
      }
    }
    if (!w.defined() && params_grad) {
      std::vector<torch::Tensor> ws, bs;
      for (const auto& p : parts_) {
        ws.push_back(p->weight);
        if (p->bias.defined()) bs.push_back(p->bias);
      }
      if (bs.size() == parts_.size() || bs.empty()) {
        w = torch::cat(ws, 0);
        if (!bs.empty()) b = torch::cat(bs, 0);
      }
    }
    if (w.defined()) {
      torch::Tensor y = small_linear(x, w, b);
      if (!y.defined()) {
        torch::Tensor x2 = x.reshape({-1, x.size(-1)});
        auto shape = x.sizes().vec();
        shape.back() = w.size(0);
        y = (b.defined() ? torch::addmm(b, x2, w.t()) : torch::mm(x2, w.t())).view(shape);
      }
      return y.split_with_sizes(sizes_, -1);
    }
  }
  std::vector<torch::Tensor> out;
  for (auto& p : parts_) out.push_back(p->forward(x));
  return out;
}

namespace {

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
    ks = k.contiguous();
    vs = v.contiguous();
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
  qkv = LinearGroup({q_proj, k_proj, v_proj});
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const Rope& rope, const torch::Tensor& bias,
                                     KVCache* cache, int64_t layer) {
  const int64_t B = x.size(0), T = x.size(1), H = num_heads, KV = num_kv_heads, D = head_dim, G = H / KV;
  std::vector<torch::Tensor> p = qkv.forward(x);  // [B,T,H*D], [B,T,KV*D], [B,T,KV*D]
  // RoPE on queries and keys in one pass, heads moved forward, 1/sqrt(D) folded into q.
  auto [q, k] = decoder_ops::rope_qk(p[0].view({B, T, H, D}), p[1].view({B, T, KV, D}), rope.cos, rope.sin,
                                     1.0 / std::sqrt(static_cast<double>(D)));  // [B,H,T,D], [B,KV,T,D]
  torch::Tensor v = p[2].view({B, T, KV, D}).transpose(1, 2);                   // [B,KV,T,D]
  if (cache) {
    auto [all_k, all_v] = cache_append(*cache, layer, k, v);
    // A prompt (nothing cached before it) attends to its own fresh keys and values: matmuls
    // on the cache's views (rows `capacity` apart) run several times slower than on k itself.
    if (all_k.size(2) != T) {
      k = all_k;
      v = all_v;
    }
  }
  // A few new tokens at inference (decode steps): one loop over the cached keys and values.
  if (T <= 4) {
    torch::Tensor out = decoder_ops::attention_decode(q, k, v, bias);
    if (out.defined()) return o_proj(out);
  }
  const int64_t S = k.size(2);
  // Grouped-query attention without repeating K/V: query head h uses kv head h / G, so the
  // G query heads of one kv head are stacked along the time axis of one matmul.
  torch::Tensor scores = batched_matmul(q.view({B, KV, G * T, D}), k.transpose(-1, -2)).view({B, KV, G, T, S});
  // Softmax in fp32 (fp64 for an fp64 model: gradient checks).
  const auto soft_dtype = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  if (scores.scalar_type() != soft_dtype) scores = scores.to(soft_dtype);
  if (bias.defined()) scores = scores + bias;
  torch::Tensor probs = torch::softmax(scores, -1);
  if (probs.scalar_type() != x.scalar_type()) probs = probs.to(x.scalar_type());
  torch::Tensor out = batched_matmul(probs.view({B, KV, G * T, S}), v);  // [B,KV,G*T,D]
  out = out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
  return o_proj(out);
}

MLPImpl::MLPImpl(const DecoderConfig& c, const torch::TensorOptions& options) {
  gate_proj = register_module("gate_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  up_proj = register_module("up_proj", Linear(c.hidden_size, c.intermediate_size, c.mlp_bias, options));
  down_proj = register_module("down_proj", Linear(c.intermediate_size, c.hidden_size, c.mlp_bias, options));
  gate_up = LinearGroup({gate_proj, up_proj});
}

torch::Tensor MLPImpl::forward(const torch::Tensor& x) {
  std::vector<torch::Tensor> p = gate_up.forward(x);
  return down_proj(decoder_ops::swiglu(p[0], p[1]));
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

void DecoderImpl::set_fused_projections(bool on) {
  for (auto& layer : model->layers) {
    layer->self_attn->qkv.enabled = on;
    layer->mlp->gate_up.enabled = on;
  }
}

torch::Tensor DecoderImpl::rope_table(int64_t positions) {
  std::lock_guard<std::mutex> lock(rope_mutex_);
  const bool stale = !rope_table_.defined() || rope_table_.scalar_type() != dtype() || rope_table_.device() != device();
  if (stale || rope_table_.size(0) < positions) {
    // Grown geometrically so that decoding one token at a time rebuilds it rarely. Each row
    // depends on its position only: growing never changes a value.
    int64_t P = std::max<int64_t>(positions, 256);
    if (!stale) P = std::max<int64_t>(P, 2 * rope_table_.size(0));
    c10::InferenceMode not_inference(false);  // kept across calls: an ordinary tensor
    torch::NoGradGuard no_grad;
    torch::Tensor pos = torch::arange(P, torch::TensorOptions().dtype(torch::kFloat32).device(device()));
    torch::Tensor freqs = pos.unsqueeze(-1) * inv_freq_.to(device());  // [P,D/2]
    torch::Tensor emb = torch::cat({freqs, freqs}, -1);
    rope_table_ = torch::stack({emb.cos(), emb.sin()}, 1).to(dtype()).contiguous();  // [P,2,D]
  }
  return rope_table_;
}

Rope DecoderImpl::rope_for(const torch::Tensor& positions, int64_t past, int64_t T) {
  // Positions never exceed past + T - 1 (they count real tokens; padding gets 1).
  torch::Tensor table = rope_table(past + T);
  torch::Tensor rows;
  if (positions.defined()) {
    rows = table.index_select(0, positions.reshape({-1})).view({positions.size(0), T, 2, table.size(2)});
  } else {
    rows = table.narrow(0, past, T).unsqueeze(0);  // [1,T,2,D]: shared by the batch, no copy
  }
  return {rows.select(2, 0), rows.select(2, 1)};
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
  // Without a mask they are past .. S-1 for every row: a slice of the rope table.
  torch::Tensor positions;
  if (mask.defined()) positions = (mask.cumsum(1) - 1).masked_fill(mask == 0, 1).narrow(1, past, T);
  Rope rope = rope_for(positions, past, T);
  // Additive mask [B,1,1,T,S]: causal and padding. A large finite negative (not -inf) keeps
  // rows of padding queries finite. A single new token without padding needs none.
  torch::Tensor bias;
  if (T > 1 || mask.defined()) {
    auto iopts = torch::TensorOptions().dtype(torch::kInt64).device(dev);
    torch::Tensor allowed;
    if (T > 1) {
      allowed = (torch::arange(S, iopts).unsqueeze(0) <= (torch::arange(T, iopts) + past).unsqueeze(1)).unsqueeze(0);  // [1,T,S]
      if (mask.defined()) allowed = allowed.logical_and(mask.unsqueeze(1) != 0);  // [B,T,S]
    } else {
      allowed = (mask != 0).unsqueeze(1);  // [B,1,S]
    }
    bias = torch::zeros(allowed.sizes(), torch::TensorOptions().dtype(torch::kFloat32).device(dev))
               .masked_fill_(allowed.logical_not(), std::numeric_limits<float>::lowest())
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
  torch::Tensor out;
  if (lm_head.is_empty()) {
    out = small_linear(hidden, model->embed_tokens->weight);
    if (!out.defined()) out = torch::linear(hidden, model->embed_tokens->weight);
  } else {
    out = lm_head(hidden);
  }
  // fp32 for fp32/bf16/fp16 models; fp64 models (gradient checks) keep fp64.
  return out.scalar_type() == torch::kFloat64 ? out : out.to(torch::kFloat32);
}

torch::Tensor DecoderImpl::lm_loss(const torch::Tensor& hidden, const torch::Tensor& targets, bool sum,
                                   int64_t ignore_index) {
  torch::Tensor h = hidden.reshape({-1, hidden.size(-1)}), t = targets.reshape({-1}).to(h.device(), torch::kInt64);
  if (!lm_head.is_empty() && lm_head->has_lora())
    return torch::nn::functional::cross_entropy(
        logits(h), t,
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index).reduction(
            sum ? torch::nn::functional::CrossEntropyFuncOptions::reduction_t(torch::kSum)
                : torch::nn::functional::CrossEntropyFuncOptions::reduction_t(torch::kMean)));
  const torch::Tensor& w = lm_head.is_empty() ? model->embed_tokens->weight : lm_head->weight;
  return decoder_ops::linear_cross_entropy(h, w, t, sum, ignore_index);
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
