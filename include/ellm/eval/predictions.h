#pragma once
// What a model said about each labelled pair, whatever produced it: a scores
// file (teacher.jsonl or any JSONL with "id" and "grade_probs" and/or "score"),
// a model directory, or the lexical-overlap control rule.
//
// Scores file, one object per line:
//   {"id": "...", "grade_probs": [p_0, ..., p_{K-1}], "score": s, "cot": "..."}
// "grade_probs" (a list in grade order, or an object keyed by grade label) and
// "score" are each optional but not both absent; probabilities must be finite,
// in [0, 1] and sum to 1 within 1e-3; "cot" (teacher.jsonl: a string, or an
// object with "text") is kept for the CoT parse rate. Rows whose id is not
// among the evaluated pairs are ignored (a teacher.jsonl covers every split);
// a pair with no row, a duplicate id or a bad value is an error naming
// file:line and the field.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

struct Prediction {
  std::vector<double> grade_probs;  // K values, or empty
  double score = std::numeric_limits<double>::quiet_NaN();  // NaN when absent
  std::optional<std::string> cot;   // the teacher's CoT text, when given
};

// The score that binary metrics rank by: P(relevant) = the sum of the
// probabilities of the grades >= scale.positive_from when grade_probs are
// given, else the "score" field. Every prediction of one evaluation must use
// the same kind (checked by binary_score_kind).
double binary_score(const Prediction& p, const GradeScale& scale);
// "p_relevant" when every prediction has grade_probs, "score" when none has;
// throws when they are mixed.
std::string binary_score_kind(const std::vector<Prediction>& preds);

struct PredictionSource {
  enum class Kind { scores, model, overlap };
  Kind kind = Kind::scores;
  std::string path;   // the scores file or the model directory (empty for overlap)
  int64_t batch = 64; // for models
  std::string dtype = "fp32";  // for students: the encoders' compute dtype, fp32 | bf16 (models/bert.h)
};

// Predictions for `pairs`, in their order. `info` (if given) receives a JSON
// description of the source for the report ("kind", "path", "model_type", ...).
// The single place where model kinds are dispatched: students
// (model_type "ellm-cross-encoder" / "ellm-two-tower") are scored in-process
// (models/student.h; score = expected grade value); a teacher (qwen2 / llama)
// is scored by `ellm teacher`, whose teacher.jsonl is then read with --scores
// (generation is a stage of its own: resumable, sharded) — `--model` says so.
std::vector<Prediction> load_predictions(const PredictionSource& source, const std::vector<Pair>& pairs,
                                         const GradeScale& scale, json* info = nullptr);

// The scores-file reader behind Kind::scores.
std::vector<Prediction> read_scores_file(const std::string& path, const std::vector<Pair>& pairs,
                                         const GradeScale& scale, int64_t* ignored_rows = nullptr);

// The lexical-overlap rule (eval/overlap.h) on query vs item_text(item): "score" only.
std::vector<Prediction> overlap_predictions(const std::vector<Pair>& pairs);

// Writes predictions as a scores file (id, grade_probs and/or score), so that a
// model scored once can be re-evaluated with --scores.
void write_scores_file(const std::string& path, const std::vector<Pair>& pairs, const std::vector<Prediction>& preds);

}  // namespace ellm
