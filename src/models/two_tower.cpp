#include "ellm/models/two_tower.h"

#include "ellm/util/error.h"

namespace ellm {

TwoTowerImpl::TwoTowerImpl(const BertConfig& bert, bool shared, int64_t projection_dim, int64_t num_grades)
    : shared_(shared), num_grades_(num_grades) {
  ELLM_CHECK(num_grades >= 2, "a two-tower model needs at least 2 grades, got {}", num_grades);
  ELLM_CHECK(projection_dim > 0, "projection_dim must be positive, got {}", projection_dim);
  const int64_t h = bert.hidden_size;
  if (shared) {
    query_bert_ = register_module("bert", BertModel(bert, false));
    query_pool_ = register_module("pooler_attention", torch::nn::Linear(h, 1));
    query_proj_ = register_module("projection", torch::nn::Linear(h, projection_dim));
  } else {
    query_bert_ = register_module("query_bert", BertModel(bert, false));
    item_bert_ = register_module("item_bert", BertModel(bert, false));
    query_pool_ = register_module("query_pooler_attention", torch::nn::Linear(h, 1));
    item_pool_ = register_module("item_pooler_attention", torch::nn::Linear(h, 1));
    query_proj_ = register_module("query_projection", torch::nn::Linear(h, projection_dim));
    item_proj_ = register_module("item_projection", torch::nn::Linear(h, projection_dim));
  }
  grade_head_ = register_module("grade_head", torch::nn::Linear(1, num_grades));
  init_weights(0);
}

void TwoTowerImpl::init_weights(uint64_t seed) {
  query_bert_->init_weights(seed);
  if (!shared_) item_bert_->init_weights(seed + 1);
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed + 0x5eed);
  double range = query_bert_->config().initializer_range;
  for (auto* l : {&query_pool_, &item_pool_, &query_proj_, &item_proj_}) {
    if (!*l) continue;
    (*l)->weight.normal_(0.0, range, gen);
    (*l)->bias.zero_();
  }
  // Higher cosine → higher grade from the start: slopes spread over [−5, 5].
  grade_head_->weight.copy_(torch::linspace(-5.0, 5.0, num_grades_).unsqueeze(1));
  grade_head_->bias.zero_();
}

TowerOutput TwoTowerImpl::encode(int side, const torch::Tensor& ids, const torch::Tensor& mask,
                                 const torch::Tensor& content, const torch::Tensor& factors) {
  bool item = side == 1 && !shared_;
  BertModel& bert = item ? item_bert_ : query_bert_;
  torch::nn::Linear& pool = item ? item_pool_ : query_pool_;
  torch::nn::Linear& proj = item ? item_proj_ : query_proj_;
  torch::Tensor h = bert->forward(ids, torch::Tensor(), mask);
  // A row without content tokens (empty text) pools over its special tokens instead.
  torch::Tensor keep = content.sum(1, true).gt(0);
  torch::Tensor valid = torch::where(keep, content, mask).to(h.scalar_type());
  torch::Tensor logits = pool->forward(h).squeeze(-1) + (1.0 - valid) * -1e9;
  TowerOutput out;
  out.attention = torch::softmax(logits, -1);
  torch::Tensor weights = out.attention;
  if (factors.defined()) weights = torch::softmax(logits + torch::log(factors.clamp_min(1e-6)), -1);
  torch::Tensor pooled = torch::bmm(weights.unsqueeze(1), h).squeeze(1);
  out.embedding = torch::nn::functional::normalize(proj->forward(pooled),
                                                   torch::nn::functional::NormalizeFuncOptions().dim(-1).eps(1e-8));
  return out;
}

torch::Tensor TwoTowerImpl::grade_logits(const torch::Tensor& score) {
  return grade_head_->forward(score.unsqueeze(-1));
}

}  // namespace ellm
