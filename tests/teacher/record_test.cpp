// teacher.jsonl records: CoT parsing and flagging, score and pred, JSON round trip, validation.
#include "ellm/teacher/record.h"

#include <gtest/gtest.h>

using namespace ellm;

namespace {
Pair pair() {
  Pair p;
  p.id = "p1";
  p.query = "grey sofa";
  p.item.title = "Harbor Sofa";
  p.item.brand = "Harbor";
  return p;
}
const char* kGood = "[category] query: \"sofa\" | item: \"Sofa\" | match\n[conclusion] exact\n";
}  // namespace

TEST(TeacherRecord, ParsedCotScoreAndPred) {
  GradeScale grades;
  std::string cot = kGood;
  auto r = make_teacher_record(pair(), &cot, {0.1, 0.3, 0.6}, grades);
  EXPECT_FALSE(r.flagged);
  EXPECT_TRUE(r.has_cot);
  EXPECT_NEAR(r.score, 0.75, 1e-12);
  EXPECT_EQ(r.pred, 2);
  EXPECT_EQ(r.item_text, "Harbor Sofa | brand: Harbor");
  Cot c;
  ASSERT_TRUE(located_cot(r, grades, c));
  ASSERT_EQ(c.steps.size(), 1u);
  EXPECT_TRUE(c.steps[0].item_located);
  EXPECT_EQ(c.steps[0].item_spans[0], (Span{7, 11}));
}

TEST(TeacherRecord, UnparseableCotIsFlaggedAndKeepsItsDistribution) {
  GradeScale grades;
  std::string cot = "[category] query: \"sofa\" | item: \"Sofa\" | maybe\n[conclusion] exact\n";
  auto r = make_teacher_record(pair(), &cot, {0.5, 0.25, 0.25}, grades);
  EXPECT_TRUE(r.flagged);
  EXPECT_NE(r.parse_error.find("unknown_verdict"), std::string::npos);
  EXPECT_NEAR(r.score, 0.375, 1e-12);
  Cot c;
  EXPECT_FALSE(located_cot(r, grades, c));
  auto back = teacher_record_from_json(teacher_record_to_json(r, grades), "t:1", grades);
  EXPECT_TRUE(back.flagged);
  EXPECT_EQ(back.parse_error, r.parse_error);
  EXPECT_EQ(back.grade_probs, r.grade_probs);
}

TEST(TeacherRecord, NoCotModeRoundTrip) {
  GradeScale grades;
  auto r = make_teacher_record(pair(), nullptr, {0.2, 0.2, 0.6}, grades);
  EXPECT_FALSE(r.has_cot);
  EXPECT_FALSE(r.flagged);
  json j = teacher_record_to_json(r, grades);
  EXPECT_TRUE(j["cot"].is_null());
  EXPECT_EQ(j["pred"], "exact");
  auto back = teacher_record_from_json(j, "t:1", grades);
  EXPECT_FALSE(back.has_cot);
  EXPECT_EQ(back.pred, 2);
}

TEST(TeacherRecord, ValidationNamesTheProblem) {
  GradeScale grades;
  std::string cot = kGood;
  json j = teacher_record_to_json(make_teacher_record(pair(), &cot, {0.1, 0.3, 0.6}, grades), grades);
  json bad = j;
  bad["grade_probs"] = {0.5, 0.6, 0.1};
  try {
    teacher_record_from_json(bad, "shard.jsonl:7", grades);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("shard.jsonl:7"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("sum"), std::string::npos);
  }
  bad = j;
  bad["grade_probs"] = {0.5, 0.5};
  EXPECT_THROW(teacher_record_from_json(bad, "x", grades), Error);
  bad = j;
  bad["pred"] = "great";
  EXPECT_THROW(teacher_record_from_json(bad, "x", grades), Error);
  bad = j;
  bad.erase("score");
  EXPECT_THROW(teacher_record_from_json(bad, "x", grades), Error);
}
