#pragma once
// The MKD loss terms (DESIGN §1, issue 8). Each returns a SUM over the
// examples it applies to (the Trainer divides by the examples of the global
// batch), so every term is a per-example average in the logged loss.
//
//   L_ce     human grade:   Σ_b −log softmax(z_b)[y_b]                (rows with y_b ≥ 0)
//   L_score  score-distribution distillation, one of
//            "kl":  T² Σ_b Σ_k p_k log(p_k / q_k),  p = softmax(log p_teacher / T),
//                   q = softmax(z_b / T)  (Hinton et al.; T² keeps gradient scale)
//            "mse": Σ_b (s_b − t_b)²  on the scores s = Σ_k softmax(z)_k v_k
//                   (v = grade values rescaled to [0, 1]) and the teacher's t
//            "bce": Σ_b −[t_b log s_b + (1 − t_b) log(1 − s_b)]  (same s, t)
//   L_bio    per example, the mean token cross-entropy over its tagged tokens
//            (tags ≥ 0; −1 = no target: special/padding tokens, pairs without CoT)
//   L_attn   Σ_b KL(f_b ‖ a_b) = Σ_t f_bt log(f_bt / a_bt) between the normalised
//            CoT attention factors f (rows summing to 1) and the student's
//            pooling attention a; rows with has_target = 0 are skipped
// Rows are masked by `weight`/`has_target` vectors ([B] float, 1 = applies).
// Total = w_ce L_ce + w_score L_score + w_bio L_bio + w_attn L_attn
// (DistillLossConfig; a term with weight 0 is not computed).
// bf16/fp16 inputs (autocast training) are promoted: every term is computed in fp32.
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace ellm {

using json = nlohmann::json;

torch::Tensor ce_loss(const torch::Tensor& logits, const torch::Tensor& labels);
torch::Tensor score_kl_loss(const torch::Tensor& logits, const torch::Tensor& teacher_probs, double temperature,
                            const torch::Tensor& has_target);
// Student score in [0, 1] from grade logits and grade values (rescaled to [0, 1]).
torch::Tensor expected_score(const torch::Tensor& logits, const std::vector<double>& grade_values);
torch::Tensor score_mse_loss(const torch::Tensor& student_score, const torch::Tensor& teacher_score,
                             const torch::Tensor& has_target);
torch::Tensor score_bce_loss(const torch::Tensor& student_score, const torch::Tensor& teacher_score,
                             const torch::Tensor& has_target);
torch::Tensor bio_loss(const torch::Tensor& tag_logits, const torch::Tensor& tags);
torch::Tensor attn_kl_loss(const torch::Tensor& attention, const torch::Tensor& target, const torch::Tensor& has_target);

// Rescales teacher scores (expected grade values) to [0, 1] like expected_score().
torch::Tensor normalise_score(const torch::Tensor& score, const std::vector<double>& grade_values);

struct DistillLossConfig {
  double ce = 1.0;          // weight of L_ce
  double score = 0.0;       // α, weight of L_score
  std::string score_kind = "kl";  // kl | mse | bce
  double temperature = 2.0;
  double bio = 0.0;         // β for the cross-encoder's L_bio
  double attn = 0.0;        // β for the two-tower's L_attn
  bool adjust_pooling = false;  // two-tower: add log(factor) to the pooling logits in training

  static json defaults();
  static DistillLossConfig from_json(const json& j);
};

}  // namespace ellm
