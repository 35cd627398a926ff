#pragma once
// BERT with a masked-language-model head: Hugging Face's BertForMaskedLM, with
// its parameter names, so that `ellm pretrain`'s output loads into transformers
// (BertForMaskedLM / AutoModel) and, through load_bert_encoder (models/bert.h),
// into an ellm student (`ellm distill --set init_from=DIR`).
//
//   bert.*                                        the encoder (models/bert.h), no pooler
//   cls.predictions.transform.dense.{weight,bias}       [H,H], [H]
//   cls.predictions.transform.LayerNorm.{weight,bias}   [H], [H]
//   cls.predictions.bias                                [V]
//   decoder weight = bert.embeddings.word_embeddings.weight [V,H] (tied, not stored;
//   transformers ties it on load and drops it on save, as here)
//
// Prediction for a hidden state h [H]:
//   logits = LN(act(W_t h + b_t)) · E^T + b        act = config.hidden_act (as the encoder's MLP)
// Logits are computed only at the positions that have an MLM target: with a
// vocabulary of 8k and 15% of the tokens masked, the full [B,T,V] would be ~7×
// the work and memory for nothing.
#include <torch/torch.h>

#include "ellm/models/bert.h"

namespace ellm {

class BertForMaskedLMImpl : public torch::nn::Module {
 public:
  explicit BertForMaskedLMImpl(const BertConfig& config);

  // input_ids, token_type_ids, attention_mask as BertModel::forward ([B,T]).
  // positions [N] int64: flat indices b*T + t of the positions to predict.
  // Returns the logits there, [N,V].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask, const torch::Tensor& positions);
  // The head alone: hidden states [N,H] → logits [N,V].
  torch::Tensor predict(const torch::Tensor& hidden);

  BertModel& bert() { return bert_; }
  const BertConfig& config() const { return bert_->config(); }
  // HF's initialisation for the encoder (BertModel::init_weights) and the head:
  // transform dense N(0, initializer_range), zero biases, LayerNorm 1/0.
  void init_weights(uint64_t seed);

 private:
  BertModel bert_{nullptr};
  torch::nn::Linear transform_{nullptr};
  torch::nn::LayerNorm transform_ln_{nullptr};
  torch::Tensor bias_;  // cls.predictions.bias [V]
};
TORCH_MODULE(BertForMaskedLM);

// Writes a Hugging Face BertForMaskedLM directory:
//   config.json        BertConfig fields, "architectures": ["BertForMaskedLM"], and
//                      "ellm_pretrain": `info` + {"tokenizer": <file name>}
//   model.safetensors  bert.* (no pooler) and cls.predictions.* (decoder tied, not stored)
//   <tokenizer file>   a copy of tokenizer_path, so that the directory is also a
//                      tokenizer path (text/tokenizer.h load_tokenizer(dir))
void save_bert_mlm(BertForMaskedLM& model, const std::string& dir, const std::string& tokenizer_path,
                   const json& info = json::object());

// Sum over the N predicted positions of −log softmax(logits)[target]:
// logits [N,V], targets [N] int64. The caller divides by the number of
// positions of the whole batch (the Trainer does, train/trainer.h).
torch::Tensor mlm_loss_sum(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace ellm
