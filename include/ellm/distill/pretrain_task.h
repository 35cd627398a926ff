#pragma once
// `ellm pretrain` as a TrainTask (train/trainer.h): masked language modelling
// (models/bert_mlm.h) of a student BERT encoder on catalogue texts
// (data/text_corpus.h), so that a from-scratch student starts distillation from
// an encoder that already knows the catalogue's words.
//
// Rows. Each text becomes [CLS] text [SEP] with the student's tokenizer and
// special ids — the two-tower item layout of distill/student_inputs.h, the
// first max_length − 2 text tokens — token types all 0, padded per batch.
// Maskable: the text tokens (segment != special); [CLS]/[SEP]/padding never are.
//
// [MASK]. The tokenizer's "[MASK]" (BERT vocab.txt) or "<mask>" when it has one;
// otherwise a new id = tokenizer.vocab_size(), and the model's vocabulary gets
// that one extra row (a SentencePiece model from `ellm tokenizer train` has no
// mask piece; a student built from the result has vocab_size = tokenizer + 1,
// which it accepts, and never sees the extra id). Random replacements are drawn
// from the tokenizer's non-special ids.
//
// Masking: data/mlm_masking.h, row seed mlm_row_seed(train.seed, step, example)
// (begin_step gives the step), so count_units and loss see the same masks.
// Units are predicted tokens: loss = Σ CE over the selected positions of the
// micro-batch; the Trainer divides by the selected positions of the global batch.
//
// Evaluation (held-out texts, fixed masks mlm_row_seed(seed, −1, i)): mlm_loss
// (mean CE per predicted token), mlm_accuracy (argmax = original), perplexity;
// score = −mlm_loss (best/ keeps the lowest).
//
// save_model writes a Hugging Face BertForMaskedLM directory (save_bert_mlm,
// models/bert_mlm.h) with a copy of the tokenizer file and, in config.json, an
// "ellm_pretrain" object {tokenizer, mask_token_id, max_length, texts}.
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/mlm_masking.h"
#include "ellm/distill/student_inputs.h"
#include "ellm/models/bert_mlm.h"
#include "ellm/train/trainer.h"

namespace ellm {

// What MLM needs from a tokenizer.
struct MlmVocab {
  int64_t mask_id = 0;
  bool added_mask = false;          // mask_id is a new id past the tokenizer's vocabulary
  int64_t min_model_vocab = 0;      // tokenizer.vocab_size() (+1 with an added mask)
  std::vector<int64_t> random_ids;  // non-special ids, for random replacements
};
MlmVocab mlm_vocab(const Tokenizer& tokenizer);

class PretrainTask : public TrainTask {
 public:
  // `tokenizer_path`: the file the tokenizer came from (copied by save_model).
  PretrainTask(BertForMaskedLM model, std::shared_ptr<const Tokenizer> tokenizer, std::string tokenizer_path,
               int64_t max_length, std::vector<std::string> train_texts, std::vector<std::string> eval_texts,
               MlmMasking masking, uint64_t seed, int64_t eval_batch);

  int64_t num_examples() const override { return static_cast<int64_t>(train_.size()); }
  int64_t example_length(int64_t i) const override { return static_cast<int64_t>(train_[i].ids.size()); }
  void begin_step(int64_t step) override { step_ = step; }
  double count_units(const std::vector<int64_t>& examples) const override;
  MicroBatchLoss loss(const std::vector<int64_t>& examples) override;
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() override;
  void set_training(bool training) override { model_->train(training); }
  EvalResult evaluate() override;
  void save_model(const std::string& dir) override;

  const MlmVocab& vocab() const { return vocab_; }
  // The masked row of training example i at a step (what loss() trains on).
  MaskedRow masked(int64_t example, int64_t step) const;

 private:
  struct Row {
    std::vector<int64_t> ids;
    std::vector<uint8_t> maskable;
  };
  // A padded batch of masked rows: ids/mask [B,T], positions [N] (flat b*T + t), targets [N].
  struct Batch {
    torch::Tensor ids, mask, positions, targets;
    int64_t tokens = 0;
  };
  Row make_row(const std::string& text) const;
  Batch collate_masked(const std::vector<MaskedRow>& rows) const;

  BertForMaskedLM model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::string tokenizer_path_;
  int64_t max_length_;
  StudentInputBuilder inputs_;
  MlmVocab vocab_;
  MlmMasking masking_;
  uint64_t seed_;
  int64_t eval_batch_;
  std::vector<Row> train_, eval_;
  int64_t step_ = 0;
};

}  // namespace ellm
