#include "ellm/eval/overlap.h"

#include <gtest/gtest.h>

using namespace ellm;

TEST(Overlap, FractionOfQueryWordsInTheItem) {
  EXPECT_DOUBLE_EQ(overlap_score("grey sectional sofa", "Sectional Sofas in Gray"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(overlap_score("2x4 stud", "2x4 x 8 ft. Stud"), 1.0);
  EXPECT_DOUBLE_EQ(overlap_score("", "anything"), 0.0);
  EXPECT_DOUBLE_EQ(overlap_score("glass", "Glasses"), 0.0);  // "glass" is not plural-stripped ("ss")
  EXPECT_DOUBLE_EQ(overlap_score("红色 沙发", "灰色沙发"), 3.0 / 4.0);  // 红 misses; 色 沙 发 hit
}

TEST(Overlap, WordsAreLowercasedAlnumRuns) {
  auto w = overlap_words("3/4 in. PVC-Pipe, Sofas");
  std::vector<std::string> want = {"3", "4", "in", "pvc", "pipe", "sofa"};
  EXPECT_EQ(w, want);
}
