#pragma once
// BERT encoder (Devlin et al.) with Hugging Face's parameter names, so that a
// checkpoint written by transformers' BertModel / BertForSequenceClassification
// loads as is and what we save loads back into transformers.
//
//   embeddings.{word_embeddings,position_embeddings,token_type_embeddings}.weight
//   embeddings.LayerNorm.{weight,bias}
//   encoder.layer.N.attention.self.{query,key,value}.{weight,bias}
//   encoder.layer.N.attention.output.dense.{weight,bias}
//   encoder.layer.N.attention.output.LayerNorm.{weight,bias}
//   encoder.layer.N.intermediate.dense.{weight,bias}
//   encoder.layer.N.output.dense.{weight,bias}
//   encoder.layer.N.output.LayerNorm.{weight,bias}
//   pooler.dense.{weight,bias}                  (when add_pooling_layer)
//
// Post-LN layers: x = LN(x + Dropout(Attn(x))); x = LN(x + Dropout(W2 act(W1 x))).
// act is hidden_act: "gelu" (exact, erf), "gelu_new"/"gelu_pytorch_tanh" (tanh
// approximation) or "relu". Attention is written with bmm + softmax (libtorch
// 1.13 has no fused kernel); padded keys get a large negative bias. Dropout is
// models/dropout.h's (same semantics as torch's, a faster random stream).
//
// Computation. Query, key and value are one [3H,H] projection (one matmul, not
// three), its query rows pre-scaled by 1/sqrt(head_dim) so that the scores need
// no separate scaling; the parameters keep HF's three names. In training (or
// whenever autograd records) the fused matrix is concatenated from the live
// parameters on every forward, so gradients reach them as usual. At inference
// (eval mode and no grad recording: NoGradGuard / InferenceMode) each layer
// keeps the fused matrix and every other weight ready-made in the inference
// dtype (set_inference_dtype: fp32 by default, or bf16), rebuilt whenever a
// parameter changed (load, optimizer step: its version counter moved) and
// dropped when the model goes back to training. In bf16 the matmuls and the
// attention (scores, softmax, context) run in bf16, while the residual stream,
// LayerNorm and GELU stay fp32 (better numerics, and libtorch 1.13's bf16
// LayerNorm/GELU kernels are slow); hidden states come back fp32, so heads stay
// fp32. Mixed-precision training is autocast's business (util/autocast.h), not
// this file's; the same fp32 LayerNorm/GELU placement applies under it.
#include <torch/torch.h>

#include "ellm/models/packed_linear.h"

#include <nlohmann/json.hpp>
#include <string>

#include "ellm/io/checkpoint.h"

namespace ellm {

using json = nlohmann::json;

// Mirrors Hugging Face's BertConfig (config.json) field for field.
struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  std::string hidden_act = "gelu";
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double initializer_range = 0.02;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;

  // Reads the fields above from a HF config.json object; missing fields keep
  // HF's defaults, wrong types and inconsistent sizes are errors naming `where`.
  static BertConfig from_json(const json& j, const std::string& where);
  // Every field above plus "model_type": "bert" and "architectures".
  json to_json() const;
  void validate(const std::string& where) const;
};

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& c);
  // x [B,T,H] (the residual stream, fp32); mask_bias [B,1,1,T] added to the attention scores
  // (undefined: no padding). On the inference path the matmuls run in `inference_dtype`.
  // Returns [B,T,H], or with first_only [B,1,H]: the first token's row alone, computed from
  // every token's keys and values but with that row's query, attention output and MLP only.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask_bias,
                        c10::ScalarType inference_dtype = c10::ScalarType::Float, bool first_only = false);
  void train(bool on = true) override;

  // The weights one forward computes with (qkv: [3H,H] / [3H], query rows pre-scaled). The
  // CPU inference cache holds the four linear layers packed instead (models/packed_linear.h),
  // their *_w / *_b then undefined.
  struct Weights {
    torch::Tensor qkv_w, qkv_b, attn_out_w, attn_out_b, attn_ln_w, attn_ln_b;
    torch::Tensor inter_w, inter_b, out_w, out_b, out_ln_w, out_ln_b;
    PackedLinear qkv, attn_out, inter, out;
  };

 private:
  Weights live_weights();                              // from the parameters, recorded by autograd
  const Weights& inference_weights(c10::ScalarType dtype);  // cached (see above)
  torch::Tensor forward_with(const Weights& w, const torch::Tensor& x, const torch::Tensor& mask_bias,
                             c10::ScalarType mm_dtype, bool first_only);

  BertConfig config_;
  torch::nn::Linear query_{nullptr}, key_{nullptr}, value_{nullptr}, attn_out_{nullptr}, inter_{nullptr}, out_{nullptr};
  torch::nn::LayerNorm attn_ln_{nullptr}, out_ln_{nullptr};
  // Inference cache and what it was built from: (storage, version) of every parameter, and the dtype.
  Weights cache_;
  std::vector<std::pair<const void*, uint32_t>> cache_key_;
  c10::ScalarType cache_dtype_ = c10::ScalarType::Undefined;
};
TORCH_MODULE(BertLayer);

// Which rows of the last hidden states a forward computes. `first`: only the [CLS] row, for
// heads that read nothing else (a grade head on the pooler): the last layer then projects the
// query, attends, and runs its output projection and MLP for that one row (keys and values
// still come from every token). A 4-layer encoder does about a fifth less work; the [CLS] row
// and every gradient are those of the full computation.
enum class BertOutputRows { all, first };

class BertModelImpl : public torch::nn::Module {
 public:
  BertModelImpl(const BertConfig& config, bool add_pooling_layer);

  // input_ids [B,T] int64; token_type_ids [B,T] (undefined: all 0);
  // attention_mask [B,T] 1 = token, 0 = padding (undefined or all 1: no padding,
  // no mask bias built). Returns the last hidden states [B,T,H], fp32, or with
  // BertOutputRows::first the [CLS] row alone, [B,1,H].
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& attention_mask, BertOutputRows rows = BertOutputRows::all);
  // tanh(dense(h[:,0])): BERT's pooled [CLS] output; requires add_pooling_layer.
  torch::Tensor pool(const torch::Tensor& hidden);

  const BertConfig& config() const { return config_; }
  // The dtype the encoder computes in on the inference path (eval mode, no grad
  // recording): kFloat (default) or kBFloat16. Training is unaffected.
  void set_inference_dtype(c10::ScalarType dtype);
  c10::ScalarType inference_dtype() const { return inference_dtype_; }
  // True when a forward now takes the inference path.
  bool inference_path() const;
  bool has_pooler() const { return static_cast<bool>(pooler_); }
  // embeddings.word_embeddings.weight [V,H] (the MLM decoder is tied to it, models/bert_mlm.h).
  const torch::Tensor& word_embedding_weight() const { return word_->weight; }
  // HF's initialisation: N(0, initializer_range) for linear and embedding
  // weights, zero biases (and the padding row), LayerNorm weight 1 bias 0.
  void init_weights(uint64_t seed);

 private:
  BertConfig config_;
  torch::nn::Embedding word_{nullptr}, position_{nullptr}, token_type_{nullptr};
  torch::nn::LayerNorm emb_ln_{nullptr};
  torch::nn::ModuleList layers_{nullptr};
  torch::nn::Linear pooler_{nullptr};
  c10::ScalarType inference_dtype_ = c10::ScalarType::Float;
};
TORCH_MODULE(BertModel);

// hidden_act applied to x: "gelu" (erf), "gelu_new"/"gelu_pytorch_tanh" (tanh), "relu".
// The encoder's MLP and the MLM head's transform (models/bert_mlm.h) share it.
torch::Tensor bert_activation(const torch::Tensor& x, const std::string& hidden_act);

// Name → parameter table of a module with `prefix` prepended ("bert.").
std::map<std::string, torch::Tensor> named_tensors(torch::nn::Module& m, const std::string& prefix = "");

// Loads the encoder weights of a Hugging Face BERT checkpoint into `bert`.
// `prefix` is where the encoder sits in the file ("bert." for the *For*
// models, "" for a bare BertModel); "auto" picks whichever the file has.
// Strict (io/checkpoint.h rules) over the encoder's tensors, except: the
// pretraining heads (cls.*) and task heads given in `ignore_prefixes` are
// skipped (their names logged), and the legacy position_ids buffer is accepted.
// A pooler the checkpoint does not have (BertForMaskedLM, e.g. `ellm pretrain`'s
// output, has none) keeps its fresh initialisation, logged — as transformers
// does when a BertForSequenceClassification starts from such a checkpoint.
// Returns the prefix used.
std::string load_bert_encoder(BertModel& bert, const CheckpointReader& reader, std::string prefix,
                              const std::vector<std::string>& ignore_prefixes = {"cls.", "classifier."});

}  // namespace ellm
