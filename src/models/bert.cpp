#include "ellm/models/bert.h"

#include <ATen/Parallel.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "ellm/models/batched_matmul.h"
#include "ellm/models/dropout.h"
#include "ellm/models/encoder_attention.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

namespace {

template <typename T>
void read_field(const json& j, const char* key, T& out, const std::string& where) {
  if (!j.contains(key) || j[key].is_null()) return;
  try {
    out = j[key].get<T>();
  } catch (const std::exception& e) {
    fail("{}: field '{}' has the wrong type ({})", where, key, j[key].dump());
  }
}

// LayerNorm(a + residual) for the inference path, one pass per row instead of a cast, an add,
// the norm and a cast back: a [R,H] in the matmul dtype (fp32 or bf16), residual [R,H] fp32,
// weight and bias [H] fp32. Returns the fp32 result and, when `low` is bf16, the same rounded
// to bf16 for the next matmul (undefined otherwise). Undefined result: not applicable (not a
// dense CPU tensor), the caller takes the ATen path.
std::pair<torch::Tensor, torch::Tensor> add_layer_norm(const torch::Tensor& a, const torch::Tensor& residual,
                                                       const torch::Tensor& weight, const torch::Tensor& bias,
                                                       double eps, c10::ScalarType low) {
  const int64_t H = residual.size(-1), R = residual.numel() / std::max<int64_t>(H, 1);
  for (const torch::Tensor* t : {&a, &residual, &weight, &bias})
    if (!t->device().is_cpu() || !t->is_contiguous()) return {};
  if (residual.scalar_type() != torch::kFloat32 || weight.scalar_type() != torch::kFloat32 ||
      bias.scalar_type() != torch::kFloat32 || a.sizes() != residual.sizes() ||
      (a.scalar_type() != torch::kFloat32 && a.scalar_type() != torch::kBFloat16))
    return {};
  torch::Tensor out = torch::empty_like(residual);
  torch::Tensor out_low = low == torch::kBFloat16 ? torch::empty(residual.sizes(), residual.options().dtype(low))
                                                  : torch::Tensor();
  const float* r = residual.data_ptr<float>();
  const float *w = weight.data_ptr<float>(), *b = bias.data_ptr<float>();
  float* y = out.data_ptr<float>();
  c10::BFloat16* yl = out_low.defined() ? out_low.data_ptr<c10::BFloat16>() : nullptr;
  const bool a_bf16 = a.scalar_type() == torch::kBFloat16;
  const float* af = a_bf16 ? nullptr : a.data_ptr<float>();
  const c10::BFloat16* ab = a_bf16 ? a.data_ptr<c10::BFloat16>() : nullptr;
  at::parallel_for(0, R, std::max<int64_t>(1, 2048 / std::max<int64_t>(H, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t o = row * H;
      float* v = y + o;  // a + residual, normalised in place
      float sum = 0;
      for (int64_t i = 0; i < H; ++i) {
        v[i] = (a_bf16 ? static_cast<float>(ab[o + i]) : af[o + i]) + r[o + i];
        sum += v[i];
      }
      const float mean = sum / H;
      float sq = 0;
      for (int64_t i = 0; i < H; ++i) sq += (v[i] - mean) * (v[i] - mean);
      const float rstd = 1.0f / std::sqrt(sq / H + static_cast<float>(eps));
      for (int64_t i = 0; i < H; ++i) v[i] = (v[i] - mean) * rstd * w[i] + b[i];
      if (yl)
        for (int64_t i = 0; i < H; ++i) yl[o + i] = c10::BFloat16(v[i]);
    }
  });
  return {out, out_low};
}

}  // namespace

BertConfig BertConfig::from_json(const json& j, const std::string& where) {
  ELLM_CHECK(j.is_object(), "{}: a BERT config must be a JSON object", where);
  BertConfig c;
  read_field(j, "vocab_size", c.vocab_size, where);
  read_field(j, "hidden_size", c.hidden_size, where);
  read_field(j, "num_hidden_layers", c.num_hidden_layers, where);
  read_field(j, "num_attention_heads", c.num_attention_heads, where);
  read_field(j, "intermediate_size", c.intermediate_size, where);
  read_field(j, "hidden_act", c.hidden_act, where);
  read_field(j, "hidden_dropout_prob", c.hidden_dropout_prob, where);
  read_field(j, "attention_probs_dropout_prob", c.attention_probs_dropout_prob, where);
  read_field(j, "max_position_embeddings", c.max_position_embeddings, where);
  read_field(j, "type_vocab_size", c.type_vocab_size, where);
  read_field(j, "initializer_range", c.initializer_range, where);
  read_field(j, "layer_norm_eps", c.layer_norm_eps, where);
  read_field(j, "pad_token_id", c.pad_token_id, where);
  if (j.contains("position_embedding_type") && j["position_embedding_type"] != "absolute")
    fail("{}: position_embedding_type {} is not supported (only \"absolute\")", where,
         j["position_embedding_type"].dump());
  c.validate(where);
  return c;
}

void BertConfig::validate(const std::string& where) const {
  ELLM_CHECK(vocab_size > 0 && hidden_size > 0 && num_hidden_layers >= 0 && intermediate_size > 0 &&
                 max_position_embeddings > 0 && type_vocab_size > 0,
             "{}: BERT sizes must be positive", where);
  ELLM_CHECK(num_attention_heads > 0 && hidden_size % num_attention_heads == 0,
             "{}: hidden_size {} is not divisible by num_attention_heads {}", where, hidden_size, num_attention_heads);
  ELLM_CHECK(hidden_act == "gelu" || hidden_act == "gelu_new" || hidden_act == "gelu_pytorch_tanh" ||
                 hidden_act == "relu",
             "{}: hidden_act '{}' is not supported (gelu, gelu_new, gelu_pytorch_tanh, relu)", where, hidden_act);
  ELLM_CHECK(pad_token_id >= 0 && pad_token_id < vocab_size, "{}: pad_token_id {} is outside the vocabulary ({})",
             where, pad_token_id, vocab_size);
}

json BertConfig::to_json() const {
  return {{"model_type", "bert"},
          {"architectures", json::array({"BertModel"})},
          {"vocab_size", vocab_size},
          {"hidden_size", hidden_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"intermediate_size", intermediate_size},
          {"hidden_act", hidden_act},
          {"hidden_dropout_prob", hidden_dropout_prob},
          {"attention_probs_dropout_prob", attention_probs_dropout_prob},
          {"max_position_embeddings", max_position_embeddings},
          {"type_vocab_size", type_vocab_size},
          {"initializer_range", initializer_range},
          {"layer_norm_eps", layer_norm_eps},
          {"pad_token_id", pad_token_id},
          {"position_embedding_type", "absolute"}};
}

torch::Tensor bert_activation(const torch::Tensor& x, const std::string& hidden_act) {
  if (hidden_act == "gelu") return torch::gelu(x);
  if (hidden_act == "relu") return torch::relu(x);
  return torch::gelu(x, "tanh");  // gelu_new / gelu_pytorch_tanh (validate() admits nothing else)
}

// ---- layer -----------------------------------------------------------------

BertLayerImpl::BertLayerImpl(const BertConfig& c) : config_(c) {
  const int64_t h = c.hidden_size;
  auto ln = [&] { return torch::nn::LayerNorm(torch::nn::LayerNormOptions({h}).eps(c.layer_norm_eps)); };
  // The module tree is HF's key tree: attention.self.*, attention.output.*, intermediate.*, output.*.
  auto attention = register_module("attention", std::make_shared<torch::nn::Module>());
  auto self = attention->register_module("self", std::make_shared<torch::nn::Module>());
  query_ = self->register_module("query", torch::nn::Linear(h, h));
  key_ = self->register_module("key", torch::nn::Linear(h, h));
  value_ = self->register_module("value", torch::nn::Linear(h, h));
  auto attn_output = attention->register_module("output", std::make_shared<torch::nn::Module>());
  attn_out_ = attn_output->register_module("dense", torch::nn::Linear(h, h));
  attn_ln_ = attn_output->register_module("LayerNorm", ln());
  auto intermediate = register_module("intermediate", std::make_shared<torch::nn::Module>());
  inter_ = intermediate->register_module("dense", torch::nn::Linear(h, c.intermediate_size));
  auto output = register_module("output", std::make_shared<torch::nn::Module>());
  out_ = output->register_module("dense", torch::nn::Linear(c.intermediate_size, h));
  out_ln_ = output->register_module("LayerNorm", ln());
}

void BertLayerImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (on) {  // the inference weights would only go stale and hold memory
    cache_ = Weights{};
    cache_key_.clear();
    cache_dtype_ = c10::ScalarType::Undefined;
  }
}

BertLayerImpl::Weights BertLayerImpl::live_weights() {
  const double scale = 1.0 / std::sqrt(static_cast<double>(config_.hidden_size / config_.num_attention_heads));
  Weights w;
  // Concatenating (and scaling) 3·H² numbers per forward is negligible next to the matmul it saves.
  w.qkv_w = torch::cat({query_->weight * scale, key_->weight, value_->weight}, 0);
  w.qkv_b = torch::cat({query_->bias * scale, key_->bias, value_->bias}, 0);
  w.attn_out_w = attn_out_->weight, w.attn_out_b = attn_out_->bias;
  w.attn_ln_w = attn_ln_->weight, w.attn_ln_b = attn_ln_->bias;
  w.inter_w = inter_->weight, w.inter_b = inter_->bias;
  w.out_w = out_->weight, w.out_b = out_->bias;
  w.out_ln_w = out_ln_->weight, w.out_ln_b = out_ln_->bias;
  return w;
}

const BertLayerImpl::Weights& BertLayerImpl::inference_weights(c10::ScalarType dtype) {
  std::vector<std::pair<const void*, uint32_t>> key;
  for (const auto& p : parameters(/*recurse=*/true)) key.emplace_back(p.data_ptr(), p.is_inference() ? 0u : p._version());
  if (dtype == cache_dtype_ && key == cache_key_) return cache_;
  Weights w;
  {
    torch::NoGradGuard no_grad;
    Weights live = live_weights();
    auto ready = [&](const torch::Tensor& t) { return t.detach().to(dtype).contiguous(); };
    const bool pack = live.qkv_w.device().is_cpu();  // packed_linear's kernels are CPU ones
    struct Linear {
      PackedLinear* packed;
      torch::Tensor *weight, *bias;
      const torch::Tensor &from_weight, &from_bias;
    };
    for (const Linear& l : {Linear{&w.qkv, &w.qkv_w, &w.qkv_b, live.qkv_w, live.qkv_b},
                            Linear{&w.attn_out, &w.attn_out_w, &w.attn_out_b, live.attn_out_w, live.attn_out_b},
                            Linear{&w.inter, &w.inter_w, &w.inter_b, live.inter_w, live.inter_b},
                            Linear{&w.out, &w.out_w, &w.out_b, live.out_w, live.out_b}}) {
      if (pack) {
        *l.packed = pack_linear(ready(l.from_weight), ready(l.from_bias));
      } else {
        *l.weight = ready(l.from_weight);
        *l.bias = ready(l.from_bias);
      }
    }
    // LayerNorm runs on the fp32 residual stream (see forward_with).
    for (auto [dst, src] : {std::pair{&w.attn_ln_w, &live.attn_ln_w}, {&w.attn_ln_b, &live.attn_ln_b},
                            {&w.out_ln_w, &live.out_ln_w}, {&w.out_ln_b, &live.out_ln_b}})
      *dst = src->detach().contiguous();
  }
  cache_ = std::move(w);
  cache_key_ = std::move(key);
  cache_dtype_ = dtype;
  return cache_;
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask_bias, c10::ScalarType dtype,
                                     bool first_only) {
  if (!is_training() && !torch::GradMode::is_enabled())
    return forward_with(inference_weights(dtype), x, mask_bias, dtype, first_only);
  return forward_with(live_weights(), x, mask_bias, x.scalar_type(), first_only);
}

torch::Tensor BertLayerImpl::forward_with(const Weights& w, const torch::Tensor& x, const torch::Tensor& mask_bias,
                                          c10::ScalarType mm_dtype, bool first_only) {
  const int64_t b = x.size(0), t = x.size(1), nh = config_.num_attention_heads, h = config_.hidden_size, hd = h / nh;
  const bool drop = is_training();
  // Matmuls (and attention) run in mm_dtype, or in bf16 under autocast; the residual stream,
  // LayerNorm and GELU stay in x's dtype (fp32): libtorch 1.13's bf16 LayerNorm and GELU
  // kernels are scalar and ~10× slower than fp32 ones, and fp32 keeps the numerics. The
  // casts between the two are cheap vectorised copies. ATen's mixed-dtype add takes a scalar
  // path ~20× slower than a cast plus a same-dtype add, hence `wide` before every residual add.
  auto narrow = [&](const torch::Tensor& y) { return y.scalar_type() == mm_dtype ? y : y.to(mm_dtype); };
  auto wide = [&](const torch::Tensor& y) { return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type()); };
  // The CPU inference cache holds packed layers (always applicable there: x in mm_dtype, no grad).
  auto linear = [](const torch::Tensor& y, const PackedLinear& packed, const torch::Tensor& weight,
                   const torch::Tensor& bias) {
    if (!packed.defined()) return torch::linear(y, weight, bias);
    torch::Tensor out = packed_linear(y, packed);
    ELLM_CHECK(out.defined(), "BERT: packed linear layer does not apply to a {} input of shape {}",
               c10::toString(y.scalar_type()), fmt::format("{}", fmt::join(y.sizes(), "x")));
    return out;
  };
  const double p_attn = config_.attention_probs_dropout_prob, p_hidden = config_.hidden_dropout_prob;
  // Output features [first, first + count) of the fused q|k|v projection (query rows pre-scaled).
  auto project_qkv = [&](const torch::Tensor& y, int64_t first, int64_t count) {
    if (!w.qkv.defined()) return torch::linear(y, w.qkv_w.narrow(0, first, count), w.qkv_b.narrow(0, first, count));
    PackedLinear part = packed_output_slice(w.qkv, first, count);
    if (part.defined()) return linear(y, part, {}, {});
    return linear(y, w.qkv, {}, {}).narrow(-1, first, count);  // panels do not split at `first`
  };
  // Residual stream of the rows this layer outputs: every token, or the first one only.
  const torch::Tensor x_out = first_only ? x.narrow(1, 0, 1).contiguous() : x;  // [B,Tq,H]
  const int64_t tq = x_out.size(1);
  torch::Tensor ctx;
  torch::Tensor q, k, v;  // [B,nh,Tq,hd], [B,nh,T,hd] ×2: views, no copies
  if (first_only) {
    // Keys and values for every token, the query for the first only.
    torch::Tensor kv = project_qkv(narrow(x), h, 2 * h);  // [B,T,2H]
    std::vector<torch::Tensor> kvs = kv.view({b, t, 2, nh, hd}).unbind(2);
    q = project_qkv(narrow(x_out), 0, h).view({b, 1, nh, hd}).transpose(1, 2);
    k = kvs[0].transpose(1, 2), v = kvs[1].transpose(1, 2);
  } else {
    torch::Tensor qkv_out = linear(narrow(x), w.qkv, w.qkv_w, w.qkv_b);  // [B,T,3H], query already scaled
    // Inference on the CPU: each (sequence, head) one fused kernel call (models/encoder_attention.h).
    if (!drop) ctx = encoder_attention(qkv_out, mask_bias, nh);
    if (!ctx.defined()) {
      // unbind, not three selects: its backward is one stack, where each select's allocates and
      // fills a zero [B,T,3H] (10× slower).
      std::vector<torch::Tensor> qkv = qkv_out.view({b, t, 3, nh, hd}).unbind(2);
      q = qkv[0].transpose(1, 2), k = qkv[1].transpose(1, 2), v = qkv[2].transpose(1, 2);
    }
  }
  if (!ctx.defined()) {
    // Heads as strided views: fp32 batched_matmul reads any strides and splits the B·nh products
    // over the threads (ATen's bmm runs a 2-thread BLAS per small [T,hd]·[hd,T] item, beside
    // ATen's own threads); other dtypes take torch::matmul there.
    torch::Tensor scores = batched_matmul(q, k.transpose(-1, -2));  // [B,nh,Tq,T]
    if (mask_bias.defined()) scores = scores + mask_bias.to(scores.scalar_type());  // [B,1,1,T]
    torch::Tensor probs = torch::softmax(scores, -1);
    probs = fast_dropout(probs, p_attn, drop);
    ctx = batched_matmul(probs, v).transpose(1, 2).reshape({b, tq, h});
  }
  torch::Tensor a = linear(ctx, w.attn_out, w.attn_out_w, w.attn_out_b);
  a = fast_dropout(a, p_hidden, drop);
  // Inference: residual add, LayerNorm and the cast for the next matmul in one pass.
  const bool fused_norm = !torch::GradMode::is_enabled() && !drop && x.scalar_type() == torch::kFloat32;
  torch::Tensor h1, h1_low;
  if (fused_norm)
    std::tie(h1, h1_low) = add_layer_norm(a, x_out, w.attn_ln_w, w.attn_ln_b, config_.layer_norm_eps, mm_dtype);
  if (!h1.defined())
    h1 = torch::layer_norm(wide(a) + x_out, {h}, w.attn_ln_w, w.attn_ln_b, config_.layer_norm_eps);
  torch::Tensor inner = bert_activation(
      wide(linear(h1_low.defined() ? h1_low : narrow(h1), w.inter, w.inter_w, w.inter_b)), config_.hidden_act);
  torch::Tensor o = linear(narrow(inner), w.out, w.out_w, w.out_b);
  o = fast_dropout(o, p_hidden, drop);
  if (fused_norm) {
    torch::Tensor y = add_layer_norm(o, h1, w.out_ln_w, w.out_ln_b, config_.layer_norm_eps, torch::kFloat32).first;
    if (y.defined()) return y;
  }
  return torch::layer_norm(wide(o) + h1, {h}, w.out_ln_w, w.out_ln_b, config_.layer_norm_eps);
}

// ---- model -----------------------------------------------------------------

BertModelImpl::BertModelImpl(const BertConfig& c, bool add_pooling_layer) : config_(c) {
  c.validate("BERT config");
  auto embeddings = register_module("embeddings", std::make_shared<torch::nn::Module>());
  word_ = embeddings->register_module("word_embeddings", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_ = embeddings->register_module("position_embeddings",
                                          torch::nn::Embedding(c.max_position_embeddings, c.hidden_size));
  token_type_ = embeddings->register_module("token_type_embeddings",
                                            torch::nn::Embedding(c.type_vocab_size, c.hidden_size));
  emb_ln_ = embeddings->register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  auto encoder = register_module("encoder", std::make_shared<torch::nn::Module>());
  layers_ = encoder->register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) layers_->push_back(BertLayer(c));
  if (add_pooling_layer) {
    auto pooler = register_module("pooler", std::make_shared<torch::nn::Module>());
    pooler_ = pooler->register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  }
  init_weights(0);
}

void BertModelImpl::init_weights(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    torch::Tensor& p = item.value();
    if (ends_with(name, "LayerNorm.weight")) {
      p.fill_(1.0);
    } else if (ends_with(name, ".bias")) {
      p.zero_();
    } else {
      p.normal_(0.0, config_.initializer_range, gen);
    }
  }
  word_->weight[config_.pad_token_id].zero_();
}

torch::Tensor BertModelImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                     const torch::Tensor& attention_mask, BertOutputRows rows) {
  ELLM_CHECK(input_ids.dim() == 2, "BERT: input_ids must be [batch, length], got {} dims", input_ids.dim());
  const int64_t t = input_ids.size(1);
  ELLM_CHECK(t <= config_.max_position_embeddings, "BERT: sequence of {} tokens exceeds max_position_embeddings {}",
             t, config_.max_position_embeddings);
  auto positions = torch::arange(t, input_ids.options().dtype(torch::kLong));
  torch::Tensor x = word_->forward(input_ids) + position_->forward(positions).unsqueeze(0);
  if (token_type_ids.defined())
    x = x + token_type_->forward(token_type_ids);
  else
    x = x + token_type_->weight[0];
  x = fast_dropout(emb_ln_->forward(x), config_.hidden_dropout_prob, is_training());
  torch::Tensor bias;
  // Without padding (the common case at batch 1, and in length-sorted batches) no bias at all.
  if (attention_mask.defined() && !attention_mask.all().item<bool>()) {
    // Finite (not -inf) so that a fully padded row stays finite; exp underflows to exactly 0.
    bias = (1.0 - attention_mask.to(x.scalar_type())).mul_(-1e9).view({x.size(0), 1, 1, t});
  }
  const bool first = rows == BertOutputRows::first;
  const size_t n = layers_->size();
  for (size_t i = 0; i < n; ++i) x = layers_[i]->as<BertLayer>()->forward(x, bias, inference_dtype_, first && i + 1 == n);
  return first && n == 0 ? x.narrow(1, 0, 1) : x;
}

void BertModelImpl::set_inference_dtype(c10::ScalarType dtype) {
  ELLM_CHECK(dtype == torch::kFloat || dtype == torch::kBFloat16, "BERT: inference dtype must be fp32 or bf16, got {}",
             c10::toString(dtype));
  inference_dtype_ = dtype;
}

bool BertModelImpl::inference_path() const { return !is_training() && !torch::GradMode::is_enabled(); }

torch::Tensor BertModelImpl::pool(const torch::Tensor& hidden) {
  ELLM_CHECK(pooler_, "BERT: this encoder was built without a pooling layer");
  return torch::tanh(pooler_->forward(hidden.select(1, 0)));
}

std::map<std::string, torch::Tensor> named_tensors(torch::nn::Module& m, const std::string& prefix) {
  std::map<std::string, torch::Tensor> out;
  for (auto& item : m.named_parameters()) out[prefix + item.key()] = item.value();
  return out;
}

std::string load_bert_encoder(BertModel& bert, const CheckpointReader& reader, std::string prefix,
                              const std::vector<std::string>& ignore_prefixes) {
  if (prefix == "auto") {
    prefix = reader.contains("bert.embeddings.word_embeddings.weight") ? "bert."
             : reader.contains("embeddings.word_embeddings.weight")    ? ""
                                                                        : "?";
    ELLM_CHECK(prefix != "?", "{}: no BERT embeddings (bert.embeddings.word_embeddings.weight or "
                              "embeddings.word_embeddings.weight) in the checkpoint", reader.dir());
  }
  auto params = named_tensors(*bert, "");
  std::set<std::string> skipped;
  for (const auto& name : reader.names()) {
    if (!starts_with(name, prefix)) {
      bool known = false;
      for (const auto& ig : ignore_prefixes) known = known || starts_with(name, ig);
      ELLM_CHECK(known, "{}: tensor '{}' belongs to no part of a BERT encoder under '{}'", reader.dir(), name, prefix);
      skipped.insert(name);
      continue;
    }
    std::string local = name.substr(prefix.size());
    if (local == "embeddings.position_ids") {  // a buffer older transformers saved; positions are 0..T-1 here
      skipped.insert(name);
      continue;
    }
    if (!bert->has_pooler() && starts_with(local, "pooler.")) {
      skipped.insert(name);
      continue;
    }
    auto it = params.find(local);
    ELLM_CHECK(it != params.end(), "{}: tensor '{}' is not a parameter of this BERT encoder", reader.dir(), name);
    const auto& info = reader.info(name);
    ELLM_CHECK(info.shape == it->second.sizes().vec(), "{}: tensor '{}' has shape {} but the model expects {}",
               reader.dir(), name, fmt::format("{}", fmt::join(info.shape, "x")),
               fmt::format("{}", fmt::join(it->second.sizes(), "x")));
    {
      torch::NoGradGuard no_grad;
      it->second.copy_(reader.view(name));
    }
    params.erase(it);
  }
  if (bert->has_pooler() && params.count("pooler.dense.weight") && params.count("pooler.dense.bias")) {
    // A checkpoint without a pooler (BertForMaskedLM): the pooler keeps its initialisation.
    params.erase("pooler.dense.weight");
    params.erase("pooler.dense.bias");
    spdlog::info("{}: no {}pooler.dense.* in the checkpoint; the pooler starts from its initialisation", reader.dir(),
                 prefix);
  }
  if (!params.empty()) fail("{}: the checkpoint lacks '{}{}' (and {} more)", reader.dir(), prefix, params.begin()->first,
                            params.size() - 1);
  if (!skipped.empty()) spdlog::info("{}: skipped {} tensors that are not the encoder's (e.g. {})", reader.dir(),
                                     skipped.size(), *skipped.begin());
  return prefix;
}

}  // namespace ellm
