// Grade distribution: chaining, restriction, renormalisation, the joint tokenisation of
// "<text> <grade>", and batching across items — against hand-computed values.
#include "ellm/teacher/grade_distribution.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "ellm/util/error.h"
#include "fake_tokenizer.h"

using namespace ellm;

namespace {

// A fake model: p(token | sequence) from a table keyed by the sequence's last token;
// tokens not in the table share what is left of the mass.
struct TableModel {
  std::map<int64_t, std::map<int64_t, double>> table;  // last token → {token: p}
  std::vector<std::vector<int64_t>> seen;               // sequences asked about
  TokenLogProbs fn() {
    return [this](const std::vector<std::vector<int64_t>>& seqs, const std::vector<std::vector<int64_t>>& wanted) {
      std::vector<std::vector<double>> out;
      for (size_t s = 0; s < seqs.size(); ++s) {
        seen.push_back(seqs[s]);
        const auto& row = table.at(seqs[s].back());
        std::vector<double> lp;
        for (int64_t t : wanted[s]) lp.push_back(std::log(row.count(t) ? row.at(t) : 1e-6));
        out.push_back(lp);
      }
      return out;
    };
  }
};

}  // namespace

TEST(GradeDistribution, SingleTokenNamesAreRestrictedAndRenormalised) {
  TableModel m;
  m.table[9] = {{5, 0.1}, {6, 0.2}, {7, 0.3}, {8, 0.4}};  // token 8 is not a grade: its mass is dropped
  GradeTokens g{{1, 9}, {{5}, {6}, {7}}};
  auto p = grade_distributions(m.fn(), {g})[0];
  ASSERT_EQ(p.size(), 3u);
  EXPECT_NEAR(p[0], 1.0 / 6, 1e-6);
  EXPECT_NEAR(p[1], 2.0 / 6, 1e-6);
  EXPECT_NEAR(p[2], 3.0 / 6, 1e-6);
  ASSERT_EQ(m.seen.size(), 1u);  // one query: the prefix
}

TEST(GradeDistribution, MultiTokenNamesChainProbabilities) {
  TableModel m;
  m.table[9] = {{5, 0.2}, {6, 0.4}, {7, 0.1}};
  m.table[6] = {{8, 0.5}, {10, 0.25}};
  // grade 0 = [5]; grade 1 = [6, 8]; grade 2 = [6, 10]: 0.2, 0.4·0.5 = 0.2, 0.4·0.25 = 0.1
  GradeTokens g{{9}, {{5}, {6, 8}, {6, 10}}};
  auto p = grade_distributions(m.fn(), {g})[0];
  EXPECT_NEAR(p[0], 0.4, 1e-6);
  EXPECT_NEAR(p[1], 0.4, 1e-6);
  EXPECT_NEAR(p[2], 0.2, 1e-6);
  // Queries deduplicated: [9] and [9, 6] only.
  ASSERT_EQ(m.seen.size(), 2u);
  EXPECT_EQ(m.seen[0], (std::vector<int64_t>{9}));
  EXPECT_EQ(m.seen[1], (std::vector<int64_t>{9, 6}));
}

TEST(GradeDistribution, ManyItemsInOneCall) {
  TableModel m;
  m.table[9] = {{5, 0.5}, {6, 0.5}};
  m.table[11] = {{5, 0.9}, {6, 0.1}};
  int calls = 0;
  auto base = m.fn();
  TokenLogProbs counted = [&](const auto& s, const auto& w) {
    ++calls;
    return base(s, w);
  };
  auto ps = grade_distributions(counted, {GradeTokens{{9}, {{5}, {6}}}, GradeTokens{{11}, {{5}, {6}}}});
  EXPECT_EQ(calls, 1);
  EXPECT_NEAR(ps[0][0], 0.5, 1e-6);
  EXPECT_NEAR(ps[1][0], 0.9, 1e-6);
  EXPECT_NEAR(ps[1][1], 0.1, 1e-6);
}

TEST(GradeDistribution, ScoreAndPrediction) {
  GradeScale grades;  // values 0, 0.5, 1
  EXPECT_NEAR(expected_score({0.2, 0.3, 0.5}, grades), 0.65, 1e-12);
  EXPECT_EQ(most_probable({0.2, 0.3, 0.5}), 2);
  EXPECT_EQ(most_probable({0.4, 0.4, 0.2}), 0);
  EXPECT_THROW(expected_score({1.0}, grades), Error);
}

TEST(GradeTokens, SplitAtTheLongestCommonPrefix) {
  auto g = split_grade_tokens({{1, 2, 3, 4}, {1, 2, 5}, {1, 2, 3, 6}});
  EXPECT_EQ(g.prefix, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(g.names[0], (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(g.names[1], (std::vector<int64_t>{5}));
  EXPECT_EQ(g.names[2], (std::vector<int64_t>{3, 6}));
  // A name that would be empty keeps its last token.
  auto h = split_grade_tokens({{1, 2, 3}, {1, 2, 3, 4}});
  EXPECT_EQ(h.prefix, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(h.names[0], (std::vector<int64_t>{3}));
  EXPECT_EQ(h.names[1], (std::vector<int64_t>{3, 4}));
  EXPECT_THROW(split_grade_tokens({{1}, {2}}), Error);  // no shared context
}

TEST(GradeTokens, JointTokenisationKeepsTheSpaceWithTheGrade) {
  test::FakeTokenizer tok;
  auto g = grade_tokens(tok, {tok.id_of("<eot>")}, "[category] x\n[conclusion]", {" irrelevant", " partial", " exact"});
  // Fake BPE: " exact" is one token, so each name is one token and the prefix ends at "[conclusion]".
  EXPECT_EQ(g.prefix.back(), tok.id_of("[conclusion]"));
  EXPECT_EQ(g.prefix.front(), tok.id_of("<eot>"));
  ASSERT_EQ(g.names.size(), 3u);
  EXPECT_EQ(g.names[2], (std::vector<int64_t>{tok.id_of(" exact")}));
}

TEST(GradeTokens, NamesThatArePrefixesOfOthersGetTheTerminator) {
  test::FakeTokenizer tok(4);  // "partial" → " par" "tial"? no: pieces of 4 bytes of the word: "part" "ial"
  auto g = grade_tokens(tok, {tok.id_of("<eot>")}, "[conclusion]", {" part", " partial"});
  // Without a terminator " part" would be a token prefix of " partial"; with "\n" the chains differ.
  EXPECT_EQ(g.names[0], (std::vector<int64_t>{tok.id_of("\n")}));
  EXPECT_EQ(g.names[1], (std::vector<int64_t>{tok.id_of("ial"), tok.id_of("\n")}));
  EXPECT_EQ(g.prefix.back(), tok.id_of(" part"));
}
