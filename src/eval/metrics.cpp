#include "ellm/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <unordered_map>

#include "ellm/util/error.h"

namespace ellm {

namespace {


// Indices sorted by score, highest first; equal scores keep index order (the
// order never matters below, because everything walks whole tie groups).
std::vector<size_t> order_descending(const std::vector<double>& scores) {
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return idx;
}

// Calls fn(tp, fp, threshold) after each tie group, walking scores downwards.
template <typename Fn>
void walk_tie_groups(const std::vector<double>& scores, const std::vector<int>& labels01, Fn fn) {
  auto idx = order_descending(scores);
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < idx.size();) {
    double s = scores[idx[i]];
    size_t j = i;
    for (; j < idx.size() && scores[idx[j]] == s; ++j) (labels01[idx[j]] ? tp : fp) += 1;
    fn(tp, fp, s);
    i = j;
  }
}

int64_t count_positives(const std::vector<int>& labels01) {
  return std::count(labels01.begin(), labels01.end(), 1);
}

}  // namespace

void check_finite(const std::vector<double>& values, const std::string& what) {
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i])) fail("{}[{}] is {}: scores must be finite numbers", what, i, values[i]);
}

void check_binary(const std::vector<double>& scores, const std::vector<int>& labels01) {
  ELLM_CHECK(scores.size() == labels01.size(), "{} scores but {} labels", scores.size(), labels01.size());
  check_finite(scores, "scores");
  for (size_t i = 0; i < labels01.size(); ++i)
    ELLM_CHECK(labels01[i] == 0 || labels01[i] == 1, "labels[{}] is {}: binary labels must be 0 or 1", i, labels01[i]);
}

std::vector<double> mid_ranks(const std::vector<double>& values) {
  std::vector<size_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), size_t{0});
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j < idx.size() && values[idx[j]] == values[idx[i]]) ++j;
    double mid = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2.0;  // mean of positions i+1..j
    for (size_t t = i; t < j; ++t) ranks[idx[t]] = mid;
    i = j;
  }
  return ranks;
}

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels01) {
  check_binary(scores, labels01);
  const double p = static_cast<double>(count_positives(labels01));
  const double n = static_cast<double>(labels01.size()) - p;
  if (p == 0 || n == 0) return kNaN;
  auto ranks = mid_ranks(scores);
  double rank_sum = 0;
  for (size_t i = 0; i < ranks.size(); ++i)
    if (labels01[i]) rank_sum += ranks[i];
  return (rank_sum - p * (p + 1) / 2.0) / (p * n);
}

std::vector<CurvePoint> roc_curve(const std::vector<double>& scores, const std::vector<int>& labels01) {
  check_binary(scores, labels01);
  const int64_t p = count_positives(labels01);
  const int64_t n = static_cast<int64_t>(labels01.size()) - p;
  std::vector<CurvePoint> out;
  if (p == 0 || n == 0) return out;
  out.push_back({0.0, 0.0, std::numeric_limits<double>::infinity()});
  walk_tie_groups(scores, labels01, [&](int64_t tp, int64_t fp, double s) {
    out.push_back({static_cast<double>(fp) / n, static_cast<double>(tp) / p, s});
  });
  return out;
}

std::vector<CurvePoint> pr_curve(const std::vector<double>& scores, const std::vector<int>& labels01) {
  check_binary(scores, labels01);
  const int64_t p = count_positives(labels01);
  std::vector<CurvePoint> out;
  if (p == 0) return out;
  walk_tie_groups(scores, labels01, [&](int64_t tp, int64_t fp, double s) {
    out.push_back({static_cast<double>(tp) / p, static_cast<double>(tp) / static_cast<double>(tp + fp), s});
  });
  return out;
}

double pr_auc(const std::vector<double>& scores, const std::vector<int>& labels01) {
  auto curve = pr_curve(scores, labels01);
  if (curve.empty()) return kNaN;
  double ap = 0, prev_recall = 0;
  for (const auto& pt : curve) {
    ap += (pt.x - prev_recall) * pt.y;
    prev_recall = pt.x;
  }
  return ap;
}

double BinaryCounts::precision() const { return tp + fp == 0 ? kNaN : static_cast<double>(tp) / (tp + fp); }
double BinaryCounts::recall() const { return tp + fn == 0 ? kNaN : static_cast<double>(tp) / (tp + fn); }
double BinaryCounts::f1() const {
  int64_t d = 2 * tp + fp + fn;
  return d == 0 ? kNaN : 2.0 * tp / d;
}
double BinaryCounts::accuracy() const {
  int64_t total = tp + fp + tn + fn;
  return total == 0 ? kNaN : static_cast<double>(tp + tn) / total;
}

BinaryCounts counts_at(const std::vector<double>& scores, const std::vector<int>& labels01, double threshold) {
  check_binary(scores, labels01);
  ELLM_CHECK(!std::isnan(threshold), "threshold is NaN");
  BinaryCounts c;
  for (size_t i = 0; i < scores.size(); ++i) {
    bool pred = scores[i] >= threshold;
    if (labels01[i]) (pred ? c.tp : c.fn) += 1;
    else (pred ? c.fp : c.tn) += 1;
  }
  return c;
}

BestF1 best_f1(const std::vector<double>& scores, const std::vector<int>& labels01) {
  check_binary(scores, labels01);
  const int64_t p = count_positives(labels01);
  if (p == 0) return {kNaN, kNaN};
  BestF1 best{-1.0, kNaN};
  walk_tie_groups(scores, labels01, [&](int64_t tp, int64_t fp, double s) {
    double f = 2.0 * tp / static_cast<double>(2 * tp + fp + (p - tp));
    if (f > best.f1) best = {f, s};
  });
  return best;
}

int argmax(const std::vector<double>& probs) {
  ELLM_CHECK(!probs.empty(), "argmax of an empty distribution");
  return static_cast<int>(std::max_element(probs.begin(), probs.end()) - probs.begin());
}

GradeResults grade_results(const std::vector<int>& predicted, const std::vector<int>& labels, int num_grades) {
  ELLM_CHECK(predicted.size() == labels.size(), "{} predictions but {} labels", predicted.size(), labels.size());
  ELLM_CHECK(num_grades >= 2, "need at least 2 grades, got {}", num_grades);
  GradeResults r;
  r.confusion.assign(num_grades, std::vector<int64_t>(num_grades, 0));
  int64_t correct = 0;
  for (size_t i = 0; i < labels.size(); ++i) {
    ELLM_CHECK(labels[i] >= 0 && labels[i] < num_grades, "labels[{}] = {} is not a grade in [0, {})", i, labels[i],
               num_grades);
    ELLM_CHECK(predicted[i] >= 0 && predicted[i] < num_grades, "predicted[{}] = {} is not a grade in [0, {})", i,
               predicted[i], num_grades);
    r.confusion[labels[i]][predicted[i]] += 1;
    correct += labels[i] == predicted[i];
  }
  r.accuracy = labels.empty() ? kNaN : static_cast<double>(correct) / labels.size();
  double sum = 0;
  int defined = 0;
  for (int g = 0; g < num_grades; ++g) {
    int64_t tp = r.confusion[g][g], fp = 0, fn = 0;
    for (int o = 0; o < num_grades; ++o) {
      if (o == g) continue;
      fp += r.confusion[o][g];
      fn += r.confusion[g][o];
    }
    int64_t d = 2 * tp + fp + fn;
    double f = d == 0 ? kNaN : 2.0 * tp / d;
    r.f1.push_back(f);
    if (!std::isnan(f)) sum += f, ++defined;
  }
  r.macro_f1 = defined == 0 ? kNaN : sum / defined;
  return r;
}

double ndcg_at(const std::vector<double>& scores, const std::vector<double>& gains, int k) {
  ELLM_CHECK(scores.size() == gains.size(), "{} scores but {} gains", scores.size(), gains.size());
  ELLM_CHECK(k >= 1, "NDCG cut-off must be >= 1, got {}", k);
  check_finite(scores, "scores");
  check_finite(gains, "gains");
  auto discount = [k](size_t rank0) { return rank0 < static_cast<size_t>(k) ? 1.0 / std::log2(rank0 + 2.0) : 0.0; };
  auto idx = order_descending(scores);
  double dcg = 0;
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    double group_gain = 0;
    for (; j < idx.size() && scores[idx[j]] == scores[idx[i]]; ++j) group_gain += gains[idx[j]];
    double mean_discount = 0;
    for (size_t r = i; r < j; ++r) mean_discount += discount(r);
    dcg += group_gain * mean_discount / static_cast<double>(j - i);
    i = j;
  }
  std::vector<double> ideal = gains;
  std::sort(ideal.begin(), ideal.end(), std::greater<double>());
  double idcg = 0;
  for (size_t r = 0; r < ideal.size(); ++r) idcg += ideal[r] * discount(r);
  return idcg <= 0 ? kNaN : dcg / idcg;
}

double mean_ndcg_at(const std::vector<double>& scores, const std::vector<double>& gains,
                    const std::vector<std::string>& query_ids, int k, int64_t* queries_used) {
  ELLM_CHECK(scores.size() == query_ids.size() && gains.size() == query_ids.size(),
             "NDCG: {} scores, {} gains, {} query ids", scores.size(), gains.size(), query_ids.size());
  std::map<std::string, std::vector<size_t>> by_query;
  for (size_t i = 0; i < query_ids.size(); ++i) by_query[query_ids[i]].push_back(i);
  double sum = 0;
  int64_t used = 0;
  for (const auto& [q, rows] : by_query) {
    std::vector<double> s, g;
    for (size_t i : rows) s.push_back(scores[i]), g.push_back(gains[i]);
    double v = ndcg_at(s, g, k);
    if (!std::isnan(v)) sum += v, ++used;
  }
  if (queries_used) *queries_used = used;
  return used == 0 ? kNaN : sum / used;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  ELLM_CHECK(a.size() == b.size(), "Spearman: {} vs {} values", a.size(), b.size());
  check_finite(a, "spearman.a");
  check_finite(b, "spearman.b");
  if (a.size() < 2) return kNaN;
  auto ra = mid_ranks(a), rb = mid_ranks(b);
  const double n = static_cast<double>(a.size());
  double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  if (saa == 0 || sbb == 0) return kNaN;
  return sab / std::sqrt(saa * sbb);
}

Reliability reliability(const std::vector<double>& probs, const std::vector<int>& labels01, int bins) {
  check_binary(probs, labels01);
  ELLM_CHECK(bins >= 1, "reliability needs >= 1 bin, got {}", bins);
  Reliability r;
  std::vector<double> conf_sum(bins, 0.0), pos(bins, 0.0);
  std::vector<int64_t> count(bins, 0);
  for (size_t i = 0; i < probs.size(); ++i) {
    double p = probs[i];
    ELLM_CHECK(p >= 0.0 && p <= 1.0, "probability[{}] = {} is outside [0, 1]", i, p);
    int b = std::min(static_cast<int>(p * bins), bins - 1);
    conf_sum[b] += p;
    pos[b] += labels01[i];
    count[b] += 1;
  }
  double ece = 0;
  for (int b = 0; b < bins; ++b) {
    ReliabilityBin bin;
    bin.lo = static_cast<double>(b) / bins;
    bin.hi = static_cast<double>(b + 1) / bins;
    bin.count = count[b];
    bin.mean_confidence = count[b] ? conf_sum[b] / count[b] : kNaN;
    bin.positive_rate = count[b] ? pos[b] / count[b] : kNaN;
    if (count[b]) ece += static_cast<double>(count[b]) * std::fabs(bin.positive_rate - bin.mean_confidence);
    r.bins.push_back(bin);
  }
  r.ece = probs.empty() ? kNaN : ece / static_cast<double>(probs.size());
  return r;
}

double quantile(std::vector<double> values, double q) {
  ELLM_CHECK(!values.empty(), "quantile of an empty sample");
  std::sort(values.begin(), values.end());
  double pos = q * static_cast<double>(values.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, values.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

std::vector<Interval> bootstrap_groups(const std::vector<std::vector<size_t>>& groups, int replicates, uint64_t seed,
                                       double level, int num_statistics,
                                       const std::function<std::vector<double>(const std::vector<size_t>&)>& statistic) {
  ELLM_CHECK(level > 0 && level < 1, "bootstrap level must be in (0, 1), got {}", level);
  std::vector<Interval> out(num_statistics, Interval{kNaN, kNaN, 0});
  if (replicates <= 0 || groups.empty()) return out;
  // mt19937_64 and a plain modulo (not std::uniform_int_distribution, whose
  // algorithm differs between standard libraries) keep intervals identical
  // across platforms for a given seed.
  std::mt19937_64 rng(seed);
  std::vector<std::vector<double>> samples(num_statistics);
  std::vector<size_t> rows;
  for (int r = 0; r < replicates; ++r) {
    rows.clear();
    for (size_t g = 0; g < groups.size(); ++g) {
      const auto& pick = groups[rng() % groups.size()];
      rows.insert(rows.end(), pick.begin(), pick.end());
    }
    auto values = statistic(rows);
    ELLM_CHECK(static_cast<int>(values.size()) == num_statistics, "bootstrap statistic returned {} values, expected {}",
               values.size(), num_statistics);
    for (int s = 0; s < num_statistics; ++s)
      if (!std::isnan(values[s])) samples[s].push_back(values[s]);
  }
  const double tail = (1.0 - level) / 2.0;
  for (int s = 0; s < num_statistics; ++s) {
    if (samples[s].empty()) continue;
    out[s] = {quantile(samples[s], tail), quantile(samples[s], 1.0 - tail), static_cast<int64_t>(samples[s].size())};
  }
  return out;
}

}  // namespace ellm
