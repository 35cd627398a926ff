#include "ellm/distill/pretrain_task.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "ellm/util/error.h"

namespace ellm {

MlmVocab mlm_vocab(const Tokenizer& tok) {
  MlmVocab v;
  const SpecialIds special = student_special_ids(tok);
  std::optional<int64_t> mask = tok.token_to_id("[MASK]");
  if (!mask) mask = tok.token_to_id("<mask>");
  v.added_mask = !mask.has_value();
  v.mask_id = mask.value_or(tok.vocab_size());
  v.min_model_vocab = tok.vocab_size() + (v.added_mask ? 1 : 0);
  for (int64_t id = 0; id < tok.vocab_size(); ++id) {
    if (tok.is_special(id) || id == v.mask_id || id == special.cls || id == special.sep || id == special.pad) continue;
    v.random_ids.push_back(id);
  }
  ELLM_CHECK(!v.random_ids.empty(), "tokenizer {} has no ordinary tokens to pre-train on", tok.describe());
  return v;
}

namespace {

InputLimits row_limits(int64_t max_length) {
  InputLimits lim;  // only max_item_length matters here: rows use the item-tower layout
  lim.max_length = std::max<int64_t>(max_length, 5);
  lim.max_query_length = lim.max_item_length = max_length;
  return lim;
}

}  // namespace

PretrainTask::PretrainTask(BertForMaskedLM model, std::shared_ptr<const Tokenizer> tokenizer,
                           std::string tokenizer_path, int64_t max_length, std::vector<std::string> train_texts,
                           std::vector<std::string> eval_texts, MlmMasking masking, uint64_t seed, int64_t eval_batch)
    : model_(std::move(model)),
      tokenizer_(std::move(tokenizer)),
      tokenizer_path_(std::move(tokenizer_path)),
      max_length_(max_length),
      inputs_(tokenizer_, row_limits(max_length)),
      vocab_(mlm_vocab(*tokenizer_)),
      masking_(masking),
      seed_(seed),
      eval_batch_(eval_batch) {
  ELLM_CHECK(max_length >= 3, "data.max_length must be at least 3 ([CLS] text [SEP]), got {}", max_length);
  ELLM_CHECK(max_length <= model_->config().max_position_embeddings,
             "data.max_length {} exceeds model.max_position_embeddings {}", max_length,
             model_->config().max_position_embeddings);
  ELLM_CHECK(model_->config().vocab_size >= vocab_.min_model_vocab,
             "model.vocab_size {} is smaller than the tokenizer's {} ids{}", model_->config().vocab_size,
             vocab_.min_model_vocab, vocab_.added_mask ? " (its vocabulary + an added [MASK])" : "");
  ELLM_CHECK(eval_batch_ > 0, "eval.batch must be positive");
  masking_.validate();
  for (const auto& t : train_texts) train_.push_back(make_row(t));
  for (const auto& t : eval_texts) eval_.push_back(make_row(t));
}

PretrainTask::Row PretrainTask::make_row(const std::string& text) const {
  StudentTokens in = inputs_.item_tower(text);
  Row r;
  r.ids = std::move(in.ids);
  for (Segment s : in.alignment.segment) r.maskable.push_back(s != Segment::special);
  return r;
}

MaskedRow PretrainTask::masked(int64_t example, int64_t step) const {
  const Row& r = train_.at(static_cast<size_t>(example));
  return mask_row(r.ids, r.maskable, vocab_.mask_id, vocab_.random_ids, masking_, mlm_row_seed(seed_, step, example));
}

double PretrainTask::count_units(const std::vector<int64_t>& examples) const {
  double n = 0;
  for (int64_t e : examples) n += static_cast<double>(masked(e, step_).positions.size());
  return n;
}

PretrainTask::Batch PretrainTask::collate_masked(const std::vector<MaskedRow>& rows) const {
  const int64_t b = static_cast<int64_t>(rows.size());
  int64_t t = 0;
  for (const auto& r : rows) t = std::max<int64_t>(t, static_cast<int64_t>(r.ids.size()));
  Batch out;
  out.ids = torch::full({b, t}, inputs_.special().pad, torch::kLong);  // [B,T]
  out.mask = torch::zeros({b, t}, torch::kLong);                       // [B,T]
  std::vector<int64_t> positions, targets;
  auto ids = out.ids.accessor<int64_t, 2>();
  auto mask = out.mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i) {
    const MaskedRow& r = rows[i];
    for (size_t j = 0; j < r.ids.size(); ++j) ids[i][j] = r.ids[j], mask[i][j] = 1;
    for (size_t k = 0; k < r.positions.size(); ++k) {
      positions.push_back(i * t + r.positions[k]);
      targets.push_back(r.targets[k]);
    }
    out.tokens += static_cast<int64_t>(r.ids.size());
  }
  out.positions = torch::tensor(positions, torch::kLong);  // [N]
  out.targets = torch::tensor(targets, torch::kLong);      // [N]
  return out;
}

MicroBatchLoss PretrainTask::loss(const std::vector<int64_t>& examples) {
  std::vector<MaskedRow> rows;
  for (int64_t e : examples) rows.push_back(masked(e, step_));
  Batch b = collate_masked(rows);
  MicroBatchLoss out;
  out.tokens = b.tokens;
  if (b.positions.numel() == 0) {
    // Nothing selected in this micro-batch (others of the step have positions): no gradient from it.
    out.loss_sum = torch::zeros({}, torch::requires_grad());
    out.terms["mlm"] = 0;
    return out;
  }
  torch::Tensor logits = model_->forward(b.ids, {}, b.mask, b.positions);  // [N,V]
  out.loss_sum = mlm_loss_sum(logits, b.targets);
  out.terms["mlm"] = out.loss_sum.item<double>();
  return out;
}

std::vector<std::pair<std::string, at::Tensor>> PretrainTask::trainable_parameters() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : model_->named_parameters()) out.emplace_back(item.key(), item.value());
  return out;
}

EvalResult PretrainTask::evaluate() {
  EvalResult r;
  if (eval_.empty()) return r;
  torch::NoGradGuard no_grad;
  double loss_sum = 0;
  int64_t predicted = 0, correct = 0;
  for (size_t start = 0; start < eval_.size(); start += static_cast<size_t>(eval_batch_)) {
    size_t end = std::min(eval_.size(), start + static_cast<size_t>(eval_batch_));
    std::vector<MaskedRow> rows;
    for (size_t i = start; i < end; ++i)
      rows.push_back(mask_row(eval_[i].ids, eval_[i].maskable, vocab_.mask_id, vocab_.random_ids, masking_,
                              mlm_row_seed(seed_, -1, static_cast<int64_t>(i))));
    Batch b = collate_masked(rows);
    if (b.positions.numel() == 0) continue;
    torch::Tensor logits = model_->forward(b.ids, {}, b.mask, b.positions);  // [N,V]
    loss_sum += mlm_loss_sum(logits, b.targets).item<double>();
    correct += logits.argmax(-1).eq(b.targets).sum().item<int64_t>();
    predicted += b.positions.numel();
  }
  if (predicted == 0) return r;
  const double mean = loss_sum / static_cast<double>(predicted);
  r.metrics = {{"mlm_loss", mean},
               {"mlm_accuracy", static_cast<double>(correct) / static_cast<double>(predicted)},
               {"perplexity", std::exp(mean)},
               {"predicted_tokens", predicted}};
  r.score = -mean;
  r.has_score = true;
  return r;
}

void PretrainTask::save_model(const std::string& dir) {
  json info = {{"mask_token_id", vocab_.mask_id},
               {"added_mask_token", vocab_.added_mask},
               {"max_length", max_length_},
               {"texts", static_cast<int64_t>(train_.size())},
               {"mask_prob", masking_.mask_prob}};
  save_bert_mlm(model_, dir, tokenizer_path_, info);
}

}  // namespace ellm
