#pragma once
// The `ellm distill` stage as a library call (the CLI parses flags and calls
// this; tests call it directly): resolve the config, build the student, read
// the pairs and the teacher's targets, train on the shared Trainer.
//
// Config (defaults = schema, util/config.h; configs/distill/*.json):
//   student          "cross-encoder" | "two-tower"
//   tokenizer        the student's tokenizer (a SentencePiece .model from
//                    `ellm tokenizer train`, a BERT vocab.txt, or a directory);
//                    "" with init_from: the tokenizer in the init_from directory
//   init_from        "" or a Hugging Face BERT directory (`ellm pretrain`'s
//                    final/, or a real BERT): its config.json gives the encoder
//                    geometry (model.* sizes are then ignored) and its weights
//                    initialise the encoder(s) by HF name, strictly (shapes
//                    checked; the MLM head cls.* skipped; a missing pooler keeps
//                    its initialisation). A directory from `ellm pretrain` names
//                    its tokenizer, and a student tokenizer with other contents
//                    is refused.
//   model            HF BERT fields (vocab_size 0 = the tokenizer's size) +
//                    shared_towers, projection_dim
//   inputs           max_length, max_query_length, max_item_length
//   loss             distill/losses.h DistillLossConfig
//   data             train_split, dev_split, max_train, max_dev (0 = all)
//   eval             batch
//   train            train/trainer.h; eval_every 0 = once per epoch
#include <nlohmann/json.hpp>
#include <string>

#include "ellm/train/trainer.h"

namespace ellm {

using json = nlohmann::json;

json distill_default_config();

// The student encoder's default geometry (the "model" block without the tower keys), shared
// with `ellm pretrain` so that a pre-trained encoder fits the students as configured.
json student_encoder_default_config();

struct DistillPaths {
  std::string pairs;    // training pairs (and dev pairs unless `dev` is given)
  std::string dev;      // optional separate dev pairs file
  std::string teacher;  // optional teacher output directory
  std::string out;
};

// Runs the stage; writes out/{metrics.jsonl, best/, final/, resolved-config.json}.
TrainResult run_distill(const json& config, const DistillPaths& paths, bool resume, Distributed& dist);

}  // namespace ellm
