#pragma once
// The `ellm pretrain` stage as a library call (the CLI parses flags and calls
// this; tests call it directly): masked-language-model pre-training of a student
// BERT encoder from scratch on catalogue text (distill/pretrain_task.h), on the
// shared Trainer. Its final/ (or best/) directory is what a student starts from:
// `ellm distill --set init_from=OUT/final`.
//
// Config (defaults = schema, util/config.h; configs/pretrain/student-mlm.json):
//   tokenizer   the student's tokenizer (as `ellm distill`'s "tokenizer")
//   model       HF BERT fields (vocab_size 0 = the tokenizer's size, + 1 when a
//               [MASK] id has to be added); the same geometry as configs/distill/*
//   data        split       pairs of this split only ("" = all); ignored for --text
//               max_length  tokens per row, including [CLS] and [SEP]
//               eval_texts  texts held out for evaluation (at most a tenth of the corpus)
//               max_texts   cap on the training texts (0 = all)
//   mlm         mask_prob, mask_token, random_token (data/mlm_masking.h)
//   eval        batch
//   train       train/trainer.h (eval_every 0 = only at the end)
#include <nlohmann/json.hpp>
#include <string>

#include "ellm/train/trainer.h"

namespace ellm {

using json = nlohmann::json;

json pretrain_default_config();

struct PretrainPaths {
  std::string pairs;  // pairs.jsonl: queries and item texts (one of pairs / text)
  std::string text;   // a plain text file, one text per line
  std::string out;
};

// Runs the stage; writes out/{metrics.jsonl, final/, best/ (with eval texts),
// checkpoint-*/, resolved-config.json}.
TrainResult run_pretrain(const json& config, const PretrainPaths& paths, bool resume, Distributed& dist);

}  // namespace ellm
