#include "ellm/models/bert.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <set>

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
  attn_drop_ = register_module("attn_dropout", torch::nn::Dropout(c.attention_probs_dropout_prob));
  hidden_drop_ = register_module("hidden_dropout", torch::nn::Dropout(c.hidden_dropout_prob));
}

torch::Tensor BertLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& mask_bias) {
  const int64_t b = x.size(0), t = x.size(1), nh = config_.num_attention_heads, hd = config_.hidden_size / nh;
  auto heads = [&](const torch::Tensor& y) { return y.view({b, t, nh, hd}).transpose(1, 2); };  // [B,nh,T,hd]
  torch::Tensor q = heads(query_->forward(x)), k = heads(key_->forward(x)), v = heads(value_->forward(x));
  torch::Tensor scores = torch::matmul(q, k.transpose(-1, -2)).mul_(1.0 / std::sqrt(static_cast<double>(hd)));
  if (mask_bias.defined()) scores = scores + mask_bias;
  torch::Tensor probs = attn_drop_->forward(torch::softmax(scores, -1));
  torch::Tensor ctx = torch::matmul(probs, v).transpose(1, 2).reshape({b, t, nh * hd});
  torch::Tensor h1 = attn_ln_->forward(x + hidden_drop_->forward(attn_out_->forward(ctx)));
  torch::Tensor inner = bert_activation(inter_->forward(h1), config_.hidden_act);
  return out_ln_->forward(h1 + hidden_drop_->forward(out_->forward(inner)));
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
  emb_drop_ = embeddings->register_module("dropout", torch::nn::Dropout(c.hidden_dropout_prob));
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
                                     const torch::Tensor& attention_mask) {
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
  x = emb_drop_->forward(emb_ln_->forward(x));
  torch::Tensor bias;
  if (attention_mask.defined()) {
    // Finite (not -inf) so that a fully padded row stays finite; exp underflows to exactly 0.
    bias = (1.0 - attention_mask.to(x.scalar_type())).mul_(-1e9).view({x.size(0), 1, 1, t});
  }
  for (const auto& layer : *layers_) x = layer->as<BertLayer>()->forward(x, bias);
  return x;
}

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
