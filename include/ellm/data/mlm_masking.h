#pragma once
// BERT's masked-language-model corruption (Devlin et al. 2019, §3.1), one row
// at a time:
//   - each maskable token (not [CLS]/[SEP]/[PAD] or another special token) is
//     selected for prediction with probability mask_prob (15%);
//   - a selected token is replaced by [MASK] with probability mask_token (80%),
//     by a token drawn uniformly from `random_ids` with probability random_token
//     (10%), and otherwise left unchanged (10%);
//   - the loss is taken at the selected positions only, against the original ids.
// Selection is per token (as transformers' DataCollatorForLanguageModeling), so the
// masked fraction is 15% in expectation; a short row may have none selected.
//
// Determinism: the result depends only on the inputs and `seed`, through a
// splitmix64 stream (the same on every platform and libtorch version). The
// pre-training task seeds each row with mlm_row_seed(train seed, step, example):
// masks differ from step to step (dynamic masking, as RoBERTa), and are the same
// after a resume, on any number of ranks and for any micro-batching.
#include <cstdint>
#include <vector>

namespace ellm {

struct MlmMasking {
  double mask_prob = 0.15;    // of the maskable tokens: selected for prediction
  double mask_token = 0.8;    // of the selected: replaced by [MASK]
  double random_token = 0.1;  // of the selected: replaced by a random ordinary token (the rest stay)
  void validate() const;      // probabilities in [0,1], mask_token + random_token ≤ 1
};

struct MaskedRow {
  std::vector<int64_t> ids;        // the corrupted input, same length as the row
  std::vector<int64_t> positions;  // indices of the selected tokens, ascending
  std::vector<int64_t> targets;    // the original ids at `positions`
};

// ids [T]; maskable [T] (1 = may be selected); random_ids: the ordinary vocabulary
// random replacements are drawn from (non-empty when random_token > 0).
MaskedRow mask_row(const std::vector<int64_t>& ids, const std::vector<uint8_t>& maskable, int64_t mask_id,
                   const std::vector<int64_t>& random_ids, const MlmMasking& masking, uint64_t seed);

// The seed of one row at one optimizer step (step −1: the fixed masks of evaluation).
uint64_t mlm_row_seed(uint64_t seed, int64_t step, int64_t example);

}  // namespace ellm
