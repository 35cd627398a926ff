#include "ellm/models/cross_encoder.h"

#include "ellm/distill/targets.h"
#include "ellm/models/dropout.h"

namespace ellm {

CrossEncoderImpl::CrossEncoderImpl(const BertConfig& bert, int64_t num_grades) : num_grades_(num_grades) {
  ELLM_CHECK(num_grades >= 2, "a cross-encoder needs at least 2 grades, got {}", num_grades);
  bert_ = register_module("bert", BertModel(bert, /*add_pooling_layer=*/true));
  classifier_ = register_module("classifier", torch::nn::Linear(bert.hidden_size, num_grades));
  token_classifier_ = register_module("token_classifier", torch::nn::Linear(bert.hidden_size, kNumBioTags));
  init_weights(0);
}

void CrossEncoderImpl::init_weights(uint64_t seed) {
  bert_->init_weights(seed);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 0x5eed);
  for (auto* l : {&classifier_, &token_classifier_}) {
    (*l)->weight.normal_(0.0, bert_->config().initializer_range, gen);
    (*l)->bias.zero_();
  }
}

CrossEncoderOutput CrossEncoderImpl::forward(const torch::Tensor& ids, const torch::Tensor& types,
                                             const torch::Tensor& mask, bool with_tags) {
  // Without the token head nothing reads past [CLS]: the last layer computes that row alone.
  torch::Tensor h = bert_->forward(ids, types, mask, with_tags ? BertOutputRows::all : BertOutputRows::first);
  CrossEncoderOutput out;
  const double p = bert_->config().hidden_dropout_prob;
  out.grade_logits = classifier_->forward(fast_dropout(bert_->pool(h), p, is_training()));
  if (with_tags) out.tag_logits = token_classifier_->forward(fast_dropout(h, p, is_training()));
  return out;
}

}  // namespace ellm
