#pragma once
// `ellm distill` as a TrainTask (train/trainer.h): a student (cross-encoder or
// two-tower) learns from human grades and, where the teacher gave them, from the
// teacher's grade distribution / score and its CoT targets (distill/losses.h).
//
// Units are examples: every loss term is a sum over the micro-batch's examples,
// and the Trainer divides by the examples of the global batch.
//
// Per example:
//   cross-encoder  [CLS] q [SEP] item [SEP]; L_ce on the label (if labelled),
//                  L_score on the teacher row (if any), L_bio on the teacher's
//                  tags of the content tokens (specials and pairs without CoT
//                  targets: no target);
//   two-tower      query tower and item tower; L_attn per tower between the
//                  pooling attention and the CoT factors (the teacher row's
//                  query- / item-segment factors moved onto the tower's tokens,
//                  renormalised; tower tokens the teacher's row cut off get the
//                  segment's smallest factor, i.e. an ordinary token's weight);
//                  with loss.adjust_pooling the factors also enter the pooling
//                  logits as log f during training.
// Evaluation on the dev pairs: AUC of P(grade ≥ positive_from) against
// label ≥ positive_from (the score the Trainer keeps the best model by and
// early-stops on), accuracy of the argmax grade, and the mean dev CE.
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/distill/losses.h"
#include "ellm/distill/teacher_targets.h"
#include "ellm/models/student.h"
#include "ellm/train/trainer.h"

namespace ellm {

class DistillTask : public TrainTask {
 public:
  // `teacher` may be null (then only L_ce is possible; other weights must be 0).
  DistillTask(Student& student, std::string tokenizer_path, std::vector<Pair> train, std::vector<Pair> dev,
              const TeacherTargets* teacher, DistillLossConfig loss, int64_t eval_batch);

  int64_t num_examples() const override { return static_cast<int64_t>(examples_.size()); }
  int64_t example_length(int64_t i) const override;
  double count_units(const std::vector<int64_t>& examples) const override {
    return static_cast<double>(examples.size());
  }
  MicroBatchLoss loss(const std::vector<int64_t>& examples) override;
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() override { return student_.named_weights(); }
  void set_training(bool training) override { student_.set_training(training); }
  EvalResult evaluate() override;
  void save_model(const std::string& dir) override;
  std::string describe(const std::vector<int64_t>& examples) const override;

  // How many training pairs have teacher scores / CoT targets (for the log).
  int64_t with_teacher() const { return with_teacher_; }
  int64_t with_cot() const { return with_cot_; }

 private:
  struct Example {
    StudentTokens cross, query, item;  // cross for cross-encoders; query + item for two-towers
    int label = -1;
    int64_t teacher_row = -1;
    bool has_cot = false;
    std::vector<int64_t> tags;         // cross-encoder, per token: tag or −1
    std::vector<float> query_factors, item_factors;  // two-tower, per tower token (sum 1 over content)
  };
  Student& student_;
  std::string tokenizer_path_;
  std::vector<Pair> train_, dev_;
  const TeacherTargets* teacher_;
  DistillLossConfig loss_;
  int64_t eval_batch_;
  std::vector<Example> examples_;
  int64_t with_teacher_ = 0, with_cot_ = 0;
};

// Area under the ROC curve of scores for binary labels (ties count one half).
// NaN when one class is absent.
double binary_auc(const std::vector<double>& scores, const std::vector<int>& positive);

}  // namespace ellm
