#include "ellm/models/bert_mlm.h"

#include <filesystem>

#include "ellm/io/atomic_file.h"
#include "ellm/io/checkpoint.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

BertForMaskedLMImpl::BertForMaskedLMImpl(const BertConfig& c) {
  // BertForMaskedLM builds its BertModel with add_pooling_layer=False: MLM never trains a pooler.
  bert_ = register_module("bert", BertModel(c, /*add_pooling_layer=*/false));
  // The module tree is HF's key tree: cls.predictions.{transform.{dense,LayerNorm},bias}.
  auto cls = register_module("cls", std::make_shared<torch::nn::Module>());
  auto predictions = cls->register_module("predictions", std::make_shared<torch::nn::Module>());
  auto transform = predictions->register_module("transform", std::make_shared<torch::nn::Module>());
  transform_ = transform->register_module("dense", torch::nn::Linear(c.hidden_size, c.hidden_size));
  transform_ln_ = transform->register_module(
      "LayerNorm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps)));
  bias_ = predictions->register_parameter("bias", torch::zeros({c.vocab_size}));
  init_weights(0);
}

void BertForMaskedLMImpl::init_weights(uint64_t seed) {
  bert_->init_weights(seed);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 0x313d);
  transform_->weight.normal_(0.0, config().initializer_range, gen);
  transform_->bias.zero_();
  transform_ln_->weight.fill_(1.0);
  transform_ln_->bias.zero_();
  bias_.zero_();
}

torch::Tensor BertForMaskedLMImpl::predict(const torch::Tensor& hidden) {
  torch::Tensor x = transform_ln_->forward(bert_activation(transform_->forward(hidden), config().hidden_act));  // [N,H]
  // The decoder is the word-embedding matrix itself (tied): [N,H] · [H,V] + [V].
  return torch::addmm(bias_, x, bert_->word_embedding_weight().t());
}

torch::Tensor BertForMaskedLMImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                           const torch::Tensor& attention_mask, const torch::Tensor& positions) {
  ELLM_CHECK(positions.dim() == 1, "MLM: positions must be [N] flat indices, got {} dims", positions.dim());
  torch::Tensor h = bert_->forward(input_ids, token_type_ids, attention_mask);  // [B,T,H]
  torch::Tensor picked = h.reshape({-1, h.size(2)}).index_select(0, positions);   // [N,H]
  return predict(picked);                                                          // [N,V]
}

torch::Tensor mlm_loss_sum(const torch::Tensor& logits, const torch::Tensor& targets) {
  ELLM_CHECK(logits.dim() == 2 && targets.dim() == 1 && logits.size(0) == targets.size(0),
             "MLM loss: logits [N,V] and targets [N] disagree ({} vs {})", fmt::format("{}", fmt::join(logits.sizes(), "x")),
             fmt::format("{}", fmt::join(targets.sizes(), "x")));
  // In fp32 even when the logits are bf16 (autocast training): a sum of log-probabilities over the vocabulary.
  const bool narrow = logits.scalar_type() == torch::kBFloat16 || logits.scalar_type() == torch::kHalf;
  return torch::nn::functional::cross_entropy(
      narrow ? logits.to(torch::kFloat) : logits, targets,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

void save_bert_mlm(BertForMaskedLM& model, const std::string& dir, const std::string& tokenizer_path, const json& info) {
  ensure_dir(dir);
  json config = model->config().to_json();
  config["architectures"] = json::array({"BertForMaskedLM"});
  config["ellm_pretrain"] = info;
  if (!tokenizer_path.empty()) {
    ELLM_CHECK(fs::is_regular_file(tokenizer_path), "tokenizer file {} does not exist", tokenizer_path);
    std::string name = fs::path(tokenizer_path).filename().string();
    fs::path dest = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(dest) || !fs::equivalent(dest, tokenizer_path, ec))
      write_file_atomic(dest.string(), read_file(tokenizer_path));
    config["ellm_pretrain"]["tokenizer"] = name;
  }
  write_file_atomic((fs::path(dir) / "config.json").string(), config.dump(2) + "\n");
  NamedTensors weights;
  for (auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value().detach());
  save_checkpoint(dir, weights);
}

}  // namespace ellm
