#include "ellm/distill/losses.h"

#include <algorithm>

#include "ellm/util/error.h"

namespace ellm {

namespace {
// Losses compute in fp32 even when the model's outputs are bf16 (autocast training,
// util/autocast.h): log-probabilities and their sums need the mantissa. Double stays double.
torch::Tensor fp32(const torch::Tensor& t) {
  return t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf ? t.to(torch::kFloat) : t;
}
}  // namespace

torch::Tensor ce_loss(const torch::Tensor& logits_in, const torch::Tensor& labels) {
  ELLM_CHECK(logits_in.dim() == 2 && labels.dim() == 1 && labels.size(0) == logits_in.size(0),
             "ce_loss: logits [B,K] and labels [B] expected");
  torch::Tensor logits = fp32(logits_in);
  return torch::nn::functional::cross_entropy(
      logits, labels, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1).reduction(torch::kSum));
}

torch::Tensor score_kl_loss(const torch::Tensor& logits_in, const torch::Tensor& teacher_probs, double temperature,
                            const torch::Tensor& has_target) {
  torch::Tensor logits = fp32(logits_in);
  ELLM_CHECK(logits.sizes() == teacher_probs.sizes(), "score KL: student logits and teacher probabilities differ in shape");
  ELLM_CHECK(temperature > 0, "score KL: temperature must be positive");
  // softmax(log p / T): the teacher's distribution at temperature T. Zero probabilities stay zero.
  torch::Tensor log_p = torch::log_softmax(torch::log(teacher_probs.clamp_min(1e-12)) / temperature, -1);
  torch::Tensor p = log_p.exp();
  torch::Tensor log_q = torch::log_softmax(logits / temperature, -1);
  torch::Tensor per_row = (p * (log_p - log_q)).sum(-1);
  return (per_row * has_target.to(per_row.scalar_type())).sum() * (temperature * temperature);
}

namespace {
std::pair<double, double> value_range(const std::vector<double>& v) {
  ELLM_CHECK(!v.empty(), "grade values are empty");
  auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  ELLM_CHECK(*hi > *lo, "grade values must not all be equal");
  return {*lo, *hi};
}
}  // namespace

torch::Tensor normalise_score(const torch::Tensor& score, const std::vector<double>& grade_values) {
  auto [lo, hi] = value_range(grade_values);
  return (score - lo) / (hi - lo);
}

torch::Tensor expected_score(const torch::Tensor& logits_in, const std::vector<double>& grade_values) {
  torch::Tensor logits = fp32(logits_in);
  ELLM_CHECK(static_cast<int64_t>(grade_values.size()) == logits.size(-1), "{} grade values for {} logits",
             grade_values.size(), logits.size(-1));
  auto [lo, hi] = value_range(grade_values);
  std::vector<double> scaled;
  for (double v : grade_values) scaled.push_back((v - lo) / (hi - lo));
  torch::Tensor v = torch::tensor(scaled, logits.options());
  return (torch::softmax(logits, -1) * v).sum(-1);
}

torch::Tensor score_mse_loss(const torch::Tensor& s_in, const torch::Tensor& t, const torch::Tensor& has_target) {
  torch::Tensor s = fp32(s_in);
  return ((s - t).pow(2) * has_target.to(s.scalar_type())).sum();
}

torch::Tensor score_bce_loss(const torch::Tensor& s_in, const torch::Tensor& t, const torch::Tensor& has_target) {
  torch::Tensor s = fp32(s_in);
  const double eps = 1e-7;
  torch::Tensor sc = s.clamp(eps, 1 - eps);
  torch::Tensor per = -(t * torch::log(sc) + (1 - t) * torch::log(1 - sc));
  return (per * has_target.to(s.scalar_type())).sum();
}

torch::Tensor bio_loss(const torch::Tensor& tag_logits_in, const torch::Tensor& tags) {
  torch::Tensor tag_logits = fp32(tag_logits_in);
  ELLM_CHECK(tag_logits.dim() == 3 && tags.dim() == 2 && tag_logits.size(0) == tags.size(0) &&
                 tag_logits.size(1) == tags.size(1),
             "bio_loss: tag logits [B,T,C] and tags [B,T] expected");
  torch::Tensor valid = tags.ge(0);
  torch::Tensor safe = tags.clamp_min(0);
  torch::Tensor nll = -torch::log_softmax(tag_logits, -1).gather(-1, safe.unsqueeze(-1)).squeeze(-1);  // [B,T]
  torch::Tensor vf = valid.to(nll.scalar_type());
  torch::Tensor count = vf.sum(1);
  torch::Tensor per_row = (nll * vf).sum(1) / count.clamp_min(1);
  return per_row.sum();  // rows without any tagged token contribute 0
}

torch::Tensor attn_kl_loss(const torch::Tensor& attention_in, const torch::Tensor& target, const torch::Tensor& has_target) {
  torch::Tensor attention = fp32(attention_in);
  ELLM_CHECK(attention.sizes() == target.sizes(), "attn_kl_loss: attention and target differ in shape");
  torch::Tensor positive = target.gt(0);
  torch::Tensor safe_t = torch::where(positive, target, torch::ones_like(target));
  torch::Tensor terms = torch::where(positive, target * (torch::log(safe_t) - torch::log(attention.clamp_min(1e-12))),
                                     torch::zeros_like(target));
  return (terms.sum(1) * has_target.to(attention.scalar_type())).sum();
}

json DistillLossConfig::defaults() {
  DistillLossConfig d;
  return {{"ce", d.ce},   {"score", d.score}, {"score_kind", d.score_kind}, {"temperature", d.temperature},
          {"bio", d.bio}, {"attn", d.attn},   {"adjust_pooling", d.adjust_pooling}};
}

DistillLossConfig DistillLossConfig::from_json(const json& j) {
  DistillLossConfig c;
  c.ce = j.at("ce");
  c.score = j.at("score");
  c.score_kind = j.at("score_kind").get<std::string>();
  c.temperature = j.at("temperature");
  c.bio = j.at("bio");
  c.attn = j.at("attn");
  c.adjust_pooling = j.at("adjust_pooling");
  ELLM_CHECK(c.score_kind == "kl" || c.score_kind == "mse" || c.score_kind == "bce",
             "loss.score_kind '{}' is not one of kl, mse, bce", c.score_kind);
  ELLM_CHECK(c.temperature > 0, "loss.temperature must be positive");
  ELLM_CHECK(c.ce >= 0 && c.score >= 0 && c.bio >= 0 && c.attn >= 0, "loss weights must be non-negative");
  return c;
}

}  // namespace ellm
