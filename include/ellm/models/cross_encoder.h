#pragma once
// Interaction student: a BERT cross-encoder over [CLS] query [SEP] item [SEP]
// (distill/student_inputs.h) with two heads:
//   grade head   classifier(dropout(pooler(h[CLS]))) → K grade logits
//                (Hugging Face BertForSequenceClassification's layout and names:
//                 bert.*, bert.pooler.dense.*, classifier.*)
//   token head   token_classifier(dropout(h)) → 9 BIO tag logits per token
//                (distill/targets.h tag set), trained on the teacher's CoT tags.
// The token head exists only to shape the encoder during distillation; serving
// uses the grade head.
#include <torch/torch.h>

#include "ellm/models/bert.h"

namespace ellm {

struct CrossEncoderOutput {
  torch::Tensor grade_logits;  // [B,K]
  torch::Tensor tag_logits;    // [B,T,9]
};

class CrossEncoderImpl : public torch::nn::Module {
 public:
  CrossEncoderImpl(const BertConfig& bert, int64_t num_grades);
  // with_tags = false: grade logits only (tag_logits undefined), the encoder's last layer
  // computing the [CLS] row alone (models/bert.h, BertOutputRows::first).
  CrossEncoderOutput forward(const torch::Tensor& ids, const torch::Tensor& types, const torch::Tensor& mask,
                             bool with_tags = true);
  BertModel& bert() { return bert_; }
  int64_t num_grades() const { return num_grades_; }
  void init_weights(uint64_t seed);

 private:
  int64_t num_grades_;
  BertModel bert_{nullptr};
  torch::nn::Linear classifier_{nullptr}, token_classifier_{nullptr};
};
TORCH_MODULE(CrossEncoder);

}  // namespace ellm
