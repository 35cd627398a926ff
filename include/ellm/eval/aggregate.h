#pragma once
// Many evaluation reports (models × variants × seeds, all on the same pairs)
// → one results table (DESIGN §6: mean ± std over seeds, paired deltas against
// the CE baseline on the same seeds, bootstrap CIs).
//
// Each report.json names its run in "meta" (set with `ellm eval --meta`):
// "model" (teacher | overlap | cross-encoder | two-tower | ...), "variant"
// (cot | no-cot | rule | ce | score-kd | cot-kd | rule-bio | mkd | ...) and,
// for trained students, "seed". Reports must share data.fingerprint (the same
// evaluated pairs): comparing numbers from different data is refused.
//
// results.json is a list, one entry per (model, variant), in table order:
//   {"model", "variant", "seeds": [...], "n_seeds",
//    "metrics": {"auc", "pr_auc", "f1", "accuracy", "longtail_auc", "ndcg@10", "ece"},  (means)
//    "std": {...}                 sample std over seeds (null with one seed),
//    "ci95": {"auc": [lo, hi], "pr_auc", "f1", "accuracy", "longtail_auc"}
//                                 mean over seeds of each report's bootstrap bounds,
//    "delta_vs_<baseline>": {metric: {"mean", "std", "n"}}  per-seed differences
//                                 against the baseline variant of the same model,
//    "reports": [paths]}
// Metrics are fractions (0..1); results.md shows them in %.
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ellm {

using json = nlohmann::json;

// The metrics carried into results, in column order.
const std::vector<std::string>& aggregate_metric_names();

struct RunMetrics {
  std::string path, model, variant, seed;  // seed "" when the report names none
  std::string fingerprint;
  std::map<std::string, double> metrics;   // NaN when undefined in the report
  std::map<std::string, std::pair<double, double>> ci95;
};
RunMetrics read_run(const std::string& report_json_path);

struct MeanStd {
  double mean = 0, std = 0;  // NaN when undefined
  int n = 0;
};

struct AggregateRow {
  std::string model, variant;
  std::vector<RunMetrics> runs;  // sorted by seed
  std::map<std::string, MeanStd> metrics;
  std::map<std::string, std::pair<double, double>> ci95;
  std::map<std::string, MeanStd> delta;  // vs the baseline; empty for the baseline itself
};

struct Aggregate {
  std::string baseline = "ce";
  std::string fingerprint;
  std::vector<AggregateRow> rows;
};

// report.json files named directly, or found (recursively) under directories; sorted.
std::vector<std::string> find_reports(const std::vector<std::string>& paths);
Aggregate aggregate_reports(const std::vector<std::string>& report_files, const std::string& baseline = "ce");
MeanStd mean_std(const std::vector<double>& values);  // NaNs left out

json results_json(const Aggregate& agg);
std::string results_markdown(const Aggregate& agg);
// DIR/results.json and DIR/results.md.
void write_aggregate(const std::string& dir, const Aggregate& agg);

}  // namespace ellm
