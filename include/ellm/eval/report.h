#pragma once
// An evaluation report: metrics overall and on slices, with bootstrap CIs over
// queries (DESIGN §6), written as report.json (schema "ellm.eval.report",
// version 1), report.md (readable tables) and plots (ROC, PR, reliability).
//
// Slices (each gets the full metric set; rows are pairs of the evaluated set):
//   all        every pair
//   longtail   queries with a word (overlap_words) outside the vocabulary of the
//              training queries — the stricter long-tail slice of DESIGN §6
//   unseen     queries that never occur in the training pairs
//   freq a-b   queries seen a..b times in the training pairs, one slice per
//              bucket: with upper bounds {1, 5, 20} → "freq 1", "freq 2-5",
//              "freq 6-20", "freq >20"
// Queries are compared after normalisation (overlap_words joined by spaces:
// lower-cased, plural "s" stripped). Without training pairs only "all" exists.
// Per grade: the rows of each grade, with n, mean binary score, binary accuracy
// at the threshold and (with grade_probs) the grade's recall.
//
// Metrics per slice: n, queries, positives, auc, pr_auc, f1/precision/recall/
// accuracy at the fixed threshold, f1_best + threshold_best, ndcg@k,
// ece (when the binary score is a probability), grade_accuracy, macro_f1 and
// f1_per_grade (with grade_probs), spearman_teacher (with teacher scores);
// ci95 for auc, pr_auc, f1, accuracy and macro_f1. Undefined values are null.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/eval/predictions.h"

namespace ellm {

inline constexpr const char* kReportSchema = "ellm.eval.report";
inline constexpr int kReportVersion = 1;

struct EvalOptions {
  double threshold = 0.5;                   // fixed operating threshold on the binary score
  int bootstrap = 1000;                     // replicates; 0 = no CIs
  uint64_t seed = 0;
  double level = 0.95;
  std::vector<int64_t> tail_buckets{1, 5, 20};  // upper bounds of the query-frequency buckets
  int ece_bins = 10;
  std::vector<int> ndcg_k{5, 10};
};

// What the training pairs tell about the evaluated queries.
struct TrainingStats {
  std::unordered_map<std::string, int64_t> query_freq;  // normalised query → training pairs
  std::unordered_set<std::string> vocab;                // words of the training queries
  int64_t pairs = 0;
};
std::string query_key(const std::string& query);
TrainingStats training_stats(const std::vector<Pair>& train);

struct Slice {
  std::string name, description;
  std::vector<size_t> rows;
};
std::vector<Slice> make_slices(const std::vector<Pair>& pairs, const TrainingStats* train,
                               const std::vector<int64_t>& tail_buckets);

struct EvalInput {
  std::vector<Pair> pairs;              // labelled (label >= 0)
  std::vector<Prediction> preds;        // same order
  GradeScale scale;
  std::vector<double> teacher_scores;   // same order, or empty
};

// The report as JSON (without the "source"/"data"/"meta" blocks the caller adds).
// Throws when a pair is unlabelled or a score is not finite (naming the pair id).
json evaluate(const EvalInput& input, const TrainingStats* train, const EvalOptions& options);

// A fingerprint of the evaluated pairs (ids and labels, in order): reports with
// equal fingerprints were computed on the same data, so they can be paired.
std::string pairs_fingerprint(const std::vector<Pair>& pairs);

std::string report_markdown(const json& report);

// Writes DIR/report.json, DIR/report.md and DIR/plots/{roc,pr,reliability}.{tsv,gp,<format>}
// (format "svg" or "png"; "none" skips the pictures). When gnuplot is not on
// PATH the data files are still written and a warning says the pictures were skipped.
void write_report(const std::string& dir, const json& report, const EvalInput& input,
                  const std::string& plot_format = "svg");

// Where gnuplot is, or "" (searched on PATH).
std::string find_gnuplot();

}  // namespace ellm
