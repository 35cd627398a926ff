#pragma once
// Relevance metrics on scored, labelled pairs (DESIGN §1, §6).
//
// Conventions shared by every function here:
//  - Binary labels are 0/1 (`labels01`); a score is "higher = more relevant".
//  - Scores must be finite: a NaN or infinite score throws ellm::Error naming
//    its index (callers that know file/line check earlier, see report.h).
//  - Ties are handled exactly, never by an arbitrary sort order: ROC-AUC counts
//    a tied positive/negative pair as 1/2 (Mann–Whitney with mid-ranks); curves,
//    average precision and F1 sweeps move one whole tie group at a time; NDCG
//    gives each item of a tie group the mean discount of the positions the group
//    spans (the expectation over the group's orderings).
//  - A metric that is undefined on its input (AUC with one class only, Spearman
//    with a constant side, F1 with no positives at all) is NaN; report.json
//    writes NaN as null.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace ellm {

// The value of an undefined metric.
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Throws ellm::Error "<what>[i] is NaN/inf" for the first non-finite value.
void check_finite(const std::vector<double>& values, const std::string& what);
// Throws unless every label is 0 or 1 and sizes match.
void check_binary(const std::vector<double>& scores, const std::vector<int>& labels01);

// Area under the ROC curve, exact with ties. NaN when a class is missing.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels01);

struct CurvePoint {
  double x = 0, y = 0;     // ROC: (FPR, TPR); PR: (recall, precision)
  double threshold = 0;    // predict positive when score >= threshold
};
// ROC curve from (0,0) to (1,1), one point per distinct score (descending).
// Empty when a class is missing.
std::vector<CurvePoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels01);
// PR curve, one point per distinct score (descending), recall increasing.
// Empty when there are no positives.
std::vector<CurvePoint> pr_curve(const std::vector<double>& scores, const std::vector<int>& labels01);
// PR-AUC as average precision: sum over tie groups of (R_i - R_{i-1}) * P_i
// (the step-wise area, no interpolation; scikit-learn's average_precision_score).
// NaN when there are no positives.
double pr_auc(const std::vector<double>& scores, const std::vector<int>& labels01);

struct BinaryCounts {
  int64_t tp = 0, fp = 0, tn = 0, fn = 0;
  double precision() const;  // NaN when nothing is predicted positive
  double recall() const;     // NaN when there are no positives
  double f1() const;         // 2tp / (2tp + fp + fn); NaN when tp + fp + fn == 0
  double accuracy() const;   // NaN on empty input
};
// Predict positive when score >= threshold.
BinaryCounts counts_at(const std::vector<double>& scores, const std::vector<int>& labels01, double threshold);

struct BestF1 {
  double f1 = 0;         // NaN when there are no positives
  double threshold = 0;  // the score at which the best tie group starts; NaN with f1
};
// The threshold among the distinct scores that maximises F1 (first, i.e. highest,
// threshold wins among equal F1 values).
BestF1 best_f1(const std::vector<double>& scores, const std::vector<int>& labels01);

// Multi-class results from predicted grades (e.g. argmax of grade_probs).
struct GradeResults {
  double accuracy = 0;             // NaN on empty input
  std::vector<double> f1;          // per grade; NaN for a grade neither present nor predicted
  double macro_f1 = 0;             // mean over the grades whose F1 is defined
  std::vector<std::vector<int64_t>> confusion;  // [true][pred]
};
GradeResults grade_results(const std::vector<int>& predicted, const std::vector<int>& labels, int num_grades);

// Index of the largest probability (lowest index among exact ties).
int argmax(const std::vector<double>& probs);

// NDCG@k per query, averaged over queries. Items are ranked by score within
// their query; gain = `gains[i]` (e.g. the grade's value), discount
// 1/log2(rank + 1). Queries with no positive gain (IDCG = 0) are skipped;
// `queries_used` (if given) receives how many counted. NaN when none did.
double mean_ndcg_at(const std::vector<double>& scores, const std::vector<double>& gains,
                    const std::vector<std::string>& query_ids, int k, int64_t* queries_used = nullptr);
// NDCG@k of one ranked list (scores and gains of one query).
double ndcg_at(const std::vector<double>& scores, const std::vector<double>& gains, int k);

// Spearman's rank correlation with mid-ranks for ties; NaN with < 2 values or a constant side.
double spearman(const std::vector<double>& a, const std::vector<double>& b);
// Mid-ranks (1-based; a tie group gets the mean of its positions).
std::vector<double> mid_ranks(const std::vector<double>& values);

// Reliability of probabilities of the positive class, in `bins` equal-width bins on [0, 1].
struct ReliabilityBin {
  double lo = 0, hi = 0;
  int64_t count = 0;
  double mean_confidence = 0;  // mean predicted probability in the bin (NaN when empty)
  double positive_rate = 0;    // fraction of positives in the bin (NaN when empty)
};
struct Reliability {
  std::vector<ReliabilityBin> bins;
  double ece = 0;  // sum_b (n_b / N) |positive_rate_b - mean_confidence_b|; NaN on empty input
};
// Throws when a probability lies outside [0, 1].
Reliability reliability(const std::vector<double>& probs, const std::vector<int>& labels01, int bins = 10);

// Bootstrap over groups (queries, DESIGN §6): `replicates` times, draw as many
// groups as there are, with replacement, from `groups` (each a list of row
// indices), and call `statistic` on the concatenated rows; it returns one value
// per statistic. NaN results (e.g. a resample with one class) are left out of
// that statistic's interval. Seeded: same seed, same intervals.
struct Interval {
  double lo = 0, hi = 0;  // percentile interval; NaN when no replicate was defined
  int64_t replicates = 0; // replicates that gave a defined value
};
std::vector<Interval> bootstrap_groups(const std::vector<std::vector<size_t>>& groups, int replicates, uint64_t seed,
                                       double level, int num_statistics,
                                       const std::function<std::vector<double>(const std::vector<size_t>&)>& statistic);

// Linear-interpolated quantile (q in [0, 1]) of a non-empty sample.
double quantile(std::vector<double> values, double q);

}  // namespace ellm
