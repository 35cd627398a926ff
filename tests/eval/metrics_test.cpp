// Metrics against values computed by hand (and, for the classic cases, the
// figures scikit-learn gives for the same inputs).
#include "ellm/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "ellm/util/error.h"
#include "../common/expect_error.h"

using ellm::test_support::error_of;

using namespace ellm;


namespace {
const std::vector<double> kScores = {0.1, 0.4, 0.35, 0.8};
const std::vector<int> kLabels = {0, 0, 1, 1};

}  // namespace

TEST(Metrics, RocAucClassicAndTies) {
  EXPECT_DOUBLE_EQ(roc_auc(kScores, kLabels), 0.75);
  // positives {0.5, 0.9}, negatives {0.5, 0.2}: pairs 0.5 (tie) + 1 + 1 + 1 = 3.5 of 4
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1}), 0.875);
  // all ties: every pair counts one half, whatever the input order
  EXPECT_DOUBLE_EQ(roc_auc({0.3, 0.3, 0.3, 0.3, 0.3}, {1, 0, 1, 0, 0}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({0.3, 0.3, 0.3}, {0, 0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3}, {0, 0, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({1, 2, 3}, {1, 0, 0}), 0.0);
}

TEST(Metrics, OneClassOnlyIsUndefined) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {1, 1})));
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.2}, {0, 0})));
  EXPECT_TRUE(roc_curve({0.1, 0.2}, {0, 0}).empty());
  EXPECT_TRUE(std::isnan(pr_auc({0.1, 0.2}, {0, 0})));
  EXPECT_DOUBLE_EQ(pr_auc({0.1, 0.2}, {1, 1}), 1.0);
  EXPECT_TRUE(std::isnan(best_f1({0.1, 0.2}, {0, 0}).f1));
  EXPECT_DOUBLE_EQ(best_f1({0.1, 0.2}, {1, 1}).f1, 1.0);
  EXPECT_DOUBLE_EQ(best_f1({0.1, 0.2}, {1, 1}).threshold, 0.1);
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(Metrics, NaNAndBadLabelsAreRejected) {
  EXPECT_CONTAINS(error_of([] { roc_auc({0.1, kNaN, 0.3}, {0, 1, 1}); }), "scores[1] is nan");
  EXPECT_CONTAINS(error_of([] { pr_auc({0.1, INFINITY}, {0, 1}); }), "scores[1] is inf");
  EXPECT_CONTAINS(error_of([] { best_f1({kNaN}, {1}); }), "scores[0]");
  EXPECT_CONTAINS(error_of([] { counts_at({0.1}, {1}, kNaN); }), "threshold is NaN");
  EXPECT_CONTAINS(error_of([] { spearman({1, kNaN}, {1, 2}); }), "spearman.a[1]");
  EXPECT_CONTAINS(error_of([] { ndcg_at({kNaN}, {1}, 5); }), "scores[0]");
  EXPECT_CONTAINS(error_of([] { roc_auc({0.1, 0.2}, {0, 2}); }), "labels[1] is 2");
  EXPECT_CONTAINS(error_of([] { roc_auc({0.1}, {0, 1}); }), "1 scores but 2 labels");
}

TEST(Metrics, RocCurveWalksTieGroups) {
  auto c = roc_curve({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1});
  ASSERT_EQ(c.size(), 4u);  // (0,0), then one point per distinct score
  EXPECT_DOUBLE_EQ(c[1].x, 0.0);
  EXPECT_DOUBLE_EQ(c[1].y, 0.5);
  EXPECT_DOUBLE_EQ(c[1].threshold, 0.9);
  EXPECT_DOUBLE_EQ(c[2].x, 0.5);
  EXPECT_DOUBLE_EQ(c[2].y, 1.0);
  EXPECT_DOUBLE_EQ(c[2].threshold, 0.5);
  EXPECT_DOUBLE_EQ(c[3].x, 1.0);
  EXPECT_DOUBLE_EQ(c[3].y, 1.0);
}

TEST(Metrics, AveragePrecision) {
  // 0.8 (+): R .5 P 1 | 0.4 (-): no recall step | 0.35 (+): R 1 P 2/3  →  .5 + .5 * 2/3
  EXPECT_NEAR(pr_auc(kScores, kLabels), 0.5 + 1.0 / 3.0, 1e-12);
  // a tie group holding a positive and a negative moves as one step: .5 * 1 + .5 * 2/3
  EXPECT_NEAR(pr_auc({0.5, 0.5, 0.2, 0.9}, {1, 0, 0, 1}), 0.5 + 1.0 / 3.0, 1e-12);
  // all tied: precision of the one group = prevalence
  EXPECT_DOUBLE_EQ(pr_auc({0.7, 0.7, 0.7, 0.7}, {0, 1, 0, 0}), 0.25);
  auto c = pr_curve(kScores, kLabels);
  ASSERT_EQ(c.size(), 4u);
  EXPECT_DOUBLE_EQ(c[2].x, 1.0);
  EXPECT_DOUBLE_EQ(c[2].y, 2.0 / 3.0);
}

TEST(Metrics, F1AtThresholdAndBest) {
  BinaryCounts c = counts_at(kScores, kLabels, 0.5);  // only 0.8 predicted positive
  EXPECT_EQ(c.tp, 1);
  EXPECT_EQ(c.fp, 0);
  EXPECT_EQ(c.tn, 2);
  EXPECT_EQ(c.fn, 1);
  EXPECT_DOUBLE_EQ(c.f1(), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(c.accuracy(), 0.75);
  EXPECT_DOUBLE_EQ(c.precision(), 1.0);
  EXPECT_DOUBLE_EQ(c.recall(), 0.5);
  EXPECT_DOUBLE_EQ(counts_at(kScores, kLabels, 0.35).f1(), 0.8);  // >= threshold is positive
  // thresholds .8 → 2/3, .4 → 1/2, .35 → 4/5, .1 → 2/3
  BestF1 b = best_f1(kScores, kLabels);
  EXPECT_DOUBLE_EQ(b.f1, 0.8);
  EXPECT_DOUBLE_EQ(b.threshold, 0.35);
  // all tied: one choice, everything positive
  BestF1 t = best_f1({0.2, 0.2, 0.2}, {1, 0, 0});
  EXPECT_DOUBLE_EQ(t.f1, 0.5);
  EXPECT_TRUE(std::isnan(counts_at({0.1}, {0}, 0.5).f1()));  // tp + fp + fn = 0
}

TEST(Metrics, GradeF1AndAccuracy) {
  // confusion: (0,0) (1,2) (2,2) (2,1) (1,1)
  GradeResults r = grade_results({0, 2, 2, 1, 1}, {0, 1, 2, 2, 1}, 3);
  EXPECT_DOUBLE_EQ(r.accuracy, 0.6);
  EXPECT_DOUBLE_EQ(r.f1[0], 1.0);
  EXPECT_DOUBLE_EQ(r.f1[1], 0.5);
  EXPECT_DOUBLE_EQ(r.f1[2], 0.5);
  EXPECT_DOUBLE_EQ(r.macro_f1, 2.0 / 3.0);
  EXPECT_EQ(r.confusion[2][1], 1);
  // a grade never present nor predicted is undefined and left out of the macro mean
  GradeResults r4 = grade_results({0, 2, 2, 1, 1}, {0, 1, 2, 2, 1}, 4);
  EXPECT_TRUE(std::isnan(r4.f1[3]));
  EXPECT_DOUBLE_EQ(r4.macro_f1, 2.0 / 3.0);
  EXPECT_CONTAINS(error_of([] { grade_results({0}, {3}, 3); }), "labels[0] = 3");
  EXPECT_EQ(argmax({0.2, 0.4, 0.4}), 1);
}

TEST(Metrics, Ndcg) {
  const double l3 = 1.0 / std::log2(3.0);
  EXPECT_NEAR(ndcg_at({3, 2, 1}, {0, 1, 1}, 3), (l3 + 0.5) / (1 + l3), 1e-12);
  EXPECT_NEAR(ndcg_at({3, 2, 1}, {0, 1, 1}, 1), 0.0, 1e-12);
  // a tie group shares the mean discount of the positions it spans
  EXPECT_NEAR(ndcg_at({1, 1}, {1, 0}, 1), 0.5, 1e-12);
  EXPECT_NEAR(ndcg_at({1, 1}, {1, 0}, 2), (1 + l3) / 2, 1e-12);
  EXPECT_TRUE(std::isnan(ndcg_at({1, 2}, {0, 0}, 5)));
  int64_t used = 0;
  double m = mean_ndcg_at({3, 2, 1, 5, 4, 7, 6}, {0, 1, 1, 0, 0, 1, 0.5}, {"a", "a", "a", "b", "b", "c", "c"}, 10, &used);
  EXPECT_EQ(used, 2);  // query b has no relevant item
  EXPECT_NEAR(m, ((l3 + 0.5) / (1 + l3) + 1.0) / 2, 1e-12);
}

TEST(Metrics, SpearmanWithTies) {
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {10, 20, 30, 40}), 1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0, 1e-12);
  // ranks a = 1, 2.5, 2.5, 4: 4.5 / sqrt(4.5 * 5)
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(22.5), 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  EXPECT_TRUE(std::isnan(spearman({1}, {1})));
  EXPECT_EQ(mid_ranks({5, 1, 5, 3}), (std::vector<double>{3.5, 1, 3.5, 2}));
}

TEST(Metrics, ReliabilityAndEce) {
  Reliability r = reliability({0.05, 0.15, 0.95, 0.85, 1.0}, {0, 1, 1, 1, 1}, 10);
  ASSERT_EQ(r.bins.size(), 10u);
  EXPECT_EQ(r.bins[9].count, 2);  // 1.0 falls in the last bin
  EXPECT_DOUBLE_EQ(r.bins[9].mean_confidence, 0.975);
  EXPECT_TRUE(std::isnan(r.bins[4].positive_rate));
  EXPECT_NEAR(r.ece, (0.05 + 0.85 + 0.15 + 2 * 0.025) / 5, 1e-12);
  EXPECT_CONTAINS(error_of([] { reliability({1.5}, {1}); }), "outside [0, 1]");
  EXPECT_DOUBLE_EQ(reliability({0.5, 0.5}, {0, 1}, 10).ece, 0.0);
}

TEST(Metrics, BootstrapOverGroupsIsSeededAndSane) {
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(quantile({4, 1, 3, 2}, 0.0), 1.0);
  // 20 queries of 4 rows; the statistic is the AUC of the resampled rows
  std::vector<double> scores;
  std::vector<int> labels;
  std::vector<std::vector<size_t>> groups;
  for (int q = 0; q < 20; ++q) {
    groups.emplace_back();
    for (int j = 0; j < 4; ++j) {
      int y = (q + j) % 2;
      groups.back().push_back(scores.size());
      scores.push_back(0.3 * y + 0.1 * ((q * 7 + j * 3) % 5));
      labels.push_back(y);
    }
  }
  auto stat = [&](const std::vector<size_t>& rows) {
    std::vector<double> s;
    std::vector<int> l;
    for (size_t i : rows) s.push_back(scores[i]), l.push_back(labels[i]);
    return std::vector<double>{roc_auc(s, l), 1.0};
  };
  auto a = bootstrap_groups(groups, 200, 7, 0.95, 2, stat);
  auto b = bootstrap_groups(groups, 200, 7, 0.95, 2, stat);
  EXPECT_EQ(a[0].lo, b[0].lo);
  EXPECT_EQ(a[0].hi, b[0].hi);
  EXPECT_EQ(a[0].replicates, 200);
  double point = roc_auc(scores, labels);
  EXPECT_LE(a[0].lo, point);
  EXPECT_GE(a[0].hi, point);
  EXPECT_LT(a[0].lo, a[0].hi);
  EXPECT_DOUBLE_EQ(a[1].lo, 1.0);
  EXPECT_DOUBLE_EQ(a[1].hi, 1.0);
  // undefined replicates are left out; all undefined → NaN interval
  auto none = bootstrap_groups(groups, 10, 1, 0.95, 1, [](const std::vector<size_t>&) {
    return std::vector<double>{std::numeric_limits<double>::quiet_NaN()};
  });
  EXPECT_TRUE(std::isnan(none[0].lo));
  EXPECT_EQ(none[0].replicates, 0);
}
