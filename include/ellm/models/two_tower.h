#pragma once
// Representation student: a query tower and an item tower (BERT encoders,
// optionally one shared encoder), each pooled by attention over its content
// tokens, projected, L2-normalised; the score is the cosine of the two.
//
//   pooling logits   a_t = w·h_t + b            over content tokens (not [CLS]/[SEP]/pad)
//                    + log f_t in training when CoT attention factors f are given
//                    (the teacher's view of which tokens matter), so that the
//                    pooled vector is built from the tokens the CoT found decisive
//   pooled           Σ_t softmax(a)_t h_t  → projection → L2 normalise
//   score            s = cos(q, i) ∈ [−1, 1]
//   grade logits     z_k = grade_head.weight_k · s + grade_head.bias_k (K grades),
//                    so a cosine maps to a grade distribution; relevance = P(grade ≥ positive_from)
//
// Names: shared towers use bert.*, pooler_attention.*, projection.*; separate
// towers prefix them with query_ / item_ (query_bert.embeddings...). grade_head.*.
// Item vectors depend on the item alone: `ellm distill export-items` precomputes them.
#include <torch/torch.h>

#include "ellm/models/bert.h"

namespace ellm {

struct TowerOutput {
  torch::Tensor embedding;  // [B,P], unit length
  torch::Tensor attention;  // [B,T] pooling weights without the factors (what inference uses)
};

class TwoTowerImpl : public torch::nn::Module {
 public:
  TwoTowerImpl(const BertConfig& bert, bool shared, int64_t projection_dim, int64_t num_grades);

  // side: 0 = query, 1 = item. `content` [B,T] 1 on query/item tokens, 0 on specials and padding.
  // `factors` [B,T] (may be undefined): CoT attention factors added as log f to the pooling logits.
  TowerOutput encode(int side, const torch::Tensor& ids, const torch::Tensor& mask, const torch::Tensor& content,
                     const torch::Tensor& factors = {});
  torch::Tensor score(const torch::Tensor& q, const torch::Tensor& i) { return (q * i).sum(-1); }
  torch::Tensor grade_logits(const torch::Tensor& score);  // [B] → [B,K]

  bool shared() const { return shared_; }
  int64_t num_grades() const { return num_grades_; }
  BertModel& tower(int side) { return side == 0 || shared_ ? query_bert_ : item_bert_; }
  void init_weights(uint64_t seed);

 private:
  bool shared_;
  int64_t num_grades_;
  BertModel query_bert_{nullptr}, item_bert_{nullptr};
  torch::nn::Linear query_pool_{nullptr}, item_pool_{nullptr}, query_proj_{nullptr}, item_proj_{nullptr};
  torch::nn::Linear grade_head_{nullptr};
};
TORCH_MODULE(TwoTower);

}  // namespace ellm
