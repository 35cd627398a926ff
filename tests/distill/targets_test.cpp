// CoT → BIO tags and attention factors, on hand-written cases.
#include "ellm/distill/targets.h"

#include <gtest/gtest.h>

#include <numeric>

using namespace ellm;

namespace {

// A stand-in student tokenizer: [CLS] query-pieces [SEP] item-pieces [SEP],
// where a piece is a whitespace-separated word cut into chunks of at most
// `piece` bytes (so multi-token terms occur) — enough to exercise alignment.
TokenAlignment align(const std::string& query, const std::string& item, size_t piece = 100) {
  TokenAlignment a;
  auto add_text = [&](const std::string& text, Segment seg) {
    size_t i = 0;
    while (i < text.size()) {
      if (text[i] == ' ') {
        ++i;
        continue;
      }
      size_t end = text.find(' ', i);
      if (end == std::string::npos) end = text.size();
      for (size_t b = i; b < end; b += piece) {
        a.segment.push_back(seg);
        a.span.push_back({static_cast<int64_t>(b), static_cast<int64_t>(std::min(end, b + piece))});
      }
      i = end;
    }
  };
  a.segment.push_back(Segment::special), a.span.push_back({0, 0});
  add_text(query, Segment::query);
  a.segment.push_back(Segment::special), a.span.push_back({0, 0});
  add_text(item, Segment::item);
  a.segment.push_back(Segment::special), a.span.push_back({0, 0});
  return a;
}

std::vector<std::string> tag_names(const std::vector<uint8_t>& tags) {
  std::vector<std::string> out;
  for (auto t : tags) out.push_back(bio_tag_names()[t]);
  return out;
}

Cot located(const std::string& text, const std::string& query, const std::string& item) {
  Cot cot = parse_cot(text, GradeScale{});
  locate_terms(cot, query, item);
  return cot;
}

}  // namespace

TEST(BioTags, MultiTokenTermsGetBeginThenInside) {
  std::string q = "grey sectional sofa", item = "Harbor Sectional Sofa in Gray Linen";
  Cot cot = located(
      "[category] query: \"sectional sofa\" | item: \"Sectional Sofa\" | match\n"
      "[brand] query: - | item: \"Harbor\" | absent\n"
      "[attribute:color] query: \"grey\" | item: \"Gray\" | match\n"
      "[conclusion] exact\n",
      q, item);
  auto tags = tag_names(bio_tags(align(q, item), cot));
  // [CLS] grey sectional sofa [SEP] Harbor Sectional Sofa in Gray Linen [SEP]
  std::vector<std::string> want = {"O", "B-ATTR", "B-CAT", "I-CAT", "O", "B-BRAND", "B-CAT", "I-CAT",
                                   "O", "B-ATTR", "O",     "O"};
  EXPECT_EQ(tags, want);
}

TEST(BioTags, SubwordPiecesOfOneWordShareTheEntity) {
  std::string q = "dishwasher", item = "Bosch dishwasher";
  Cot cot = located("[category] query: \"dishwasher\" | item: \"dishwasher\" | match\n[conclusion] exact\n", q, item);
  auto tags = tag_names(bio_tags(align(q, item, 4), cot));  // "dishwasher" → "dish" "wash" "er"
  std::vector<std::string> want = {"O", "B-CAT", "I-CAT", "I-CAT", "O", "O", "O", "B-CAT", "I-CAT", "I-CAT", "O"};
  EXPECT_EQ(tags, want);
}

TEST(BioTags, RepeatedTermTagsEveryOccurrence) {
  std::string q = "oak table", item = "oak table with oak finish";
  Cot cot = located("[attribute:material] query: \"oak\" | item: \"oak\" | match\n[conclusion] exact\n", q, item);
  auto tags = tag_names(bio_tags(align(q, item), cot));
  std::vector<std::string> want = {"O", "B-ATTR", "O", "O", "B-ATTR", "O", "O", "B-ATTR", "O", "O"};
  EXPECT_EQ(tags, want);
}

TEST(BioTags, UnlocatedTermsProduceNoTags) {
  std::string q = "red chair", item = "Blue Stool";
  Cot cot = located(
      "[category] query: \"armchair\" | item: \"Stool\" | mismatch\n"  // "armchair" is not in the query
      "[attribute:color] query: \"red\" | item: \"crimson\" | partial\n"  // "crimson" is not in the item
      "[conclusion] irrelevant\n",
      q, item);
  EXPECT_FALSE(cot.steps[0].query_located);
  EXPECT_FALSE(cot.steps[1].item_located);
  auto tags = tag_names(bio_tags(align(q, item), cot));
  std::vector<std::string> want = {"O", "B-ATTR", "O", "O", "O", "B-CAT", "O"};
  EXPECT_EQ(tags, want);
}

TEST(BioTags, CjkText) {
  // Chinese product text, one token per character (3 bytes each in UTF-8).
  std::string q = "红色 沙发", item = "灰色 布艺 沙发";
  Cot cot = located(
      "[category] query: \"沙发\" | item: \"沙发\" | match\n"
      "[attribute:color] query: \"红色\" | item: \"灰色\" | mismatch\n"
      "[conclusion] partial\n",
      q, item);
  auto tags = tag_names(bio_tags(align(q, item, 3), cot));
  // [CLS] 红 色 沙 发 [SEP] 灰 色 布 艺 沙 发 [SEP]
  std::vector<std::string> want = {"O", "B-ATTR", "I-ATTR", "B-CAT", "I-CAT", "O", "B-ATTR",
                                   "I-ATTR", "O", "O", "B-CAT", "I-CAT", "O"};
  EXPECT_EQ(tags, want);
}

TEST(AttentionFactors, DecisiveTermsWeighMoreAndSegmentsSumToOne) {
  std::string q = "grey sofa", item = "Gray Sofa by Harbor";
  Cot cot = located(
      "[category] query: \"sofa\" | item: \"Sofa\" | match\n"
      "[brand] query: - | item: \"Harbor\" | absent\n"
      "[attribute:color] query: \"grey\" | item: \"Gray\" | mismatch\n"
      "[conclusion] partial\n",
      q, item);
  AttentionFactors cfg;
  auto f = attention_factors(align(q, item), cot, cfg);
  // [CLS] grey sofa [SEP] Gray Sofa by Harbor [SEP]
  ASSERT_EQ(f.size(), 9u);
  EXPECT_EQ(f[0], 0.0f);
  EXPECT_EQ(f[3], 0.0f);
  EXPECT_EQ(f[8], 0.0f);
  // query: grey (attr mismatch 2.0), sofa (category match 3.0) → 2/5, 3/5
  EXPECT_NEAR(f[1], 2.0 / 5.0, 1e-6);
  EXPECT_NEAR(f[2], 3.0 / 5.0, 1e-6);
  // item: Gray 2.0, Sofa 3.0, by 1.0, Harbor (brand absent 1.2) → total 7.2
  EXPECT_NEAR(f[4], 2.0 / 7.2, 1e-6);
  EXPECT_NEAR(f[5], 3.0 / 7.2, 1e-6);
  EXPECT_NEAR(f[6], 1.0 / 7.2, 1e-6);
  EXPECT_NEAR(f[7], 1.2 / 7.2, 1e-6);
}

TEST(AttentionFactors, ConfigFromJsonOverridesAndRejectsUnknownNames) {
  auto cfg = AttentionFactors::from_json(json::parse(R"({"brand": {"match": 9}})"));
  EXPECT_EQ(cfg.factor[1][0], 9.0f);
  EXPECT_EQ(cfg.factor[0][0], AttentionFactors().factor[0][0]);
  EXPECT_THROW(AttentionFactors::from_json(json::parse(R"({"colour": {"match": 2}})")), Error);
  EXPECT_THROW(AttentionFactors::from_json(json::parse(R"({"brand": {"maybe": 2}})")), Error);
  EXPECT_THROW(AttentionFactors::from_json(json::parse(R"({"brand": {"match": -1}})")), Error);
  EXPECT_EQ(AttentionFactors::from_json(cfg.to_json()).factor, cfg.factor);
}
