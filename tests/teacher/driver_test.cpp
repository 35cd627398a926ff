// The teacher driver with a deterministic fake model: sharding across ranks, resume after a
// crash (including a cut last line), merge in input order, and the written targets.
#include "ellm/teacher/driver.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include <torch/torch.h>

#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/teacher/targets_writer.h"
#include "fake_tokenizer.h"

using namespace ellm;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("ellm_teacher_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::vector<Pair> make_pairs(int n) {
  std::vector<Pair> out;
  for (int i = 0; i < n; ++i) {
    Pair p;
    p.id = "p" + std::to_string(i);
    p.query = i % 2 ? "grey sofa" : "oak dining table with extra leaves";
    p.item.title = i % 2 ? "Harbor Sofa in Gray" : "Oak Table";
    p.item.brand = "Harbor";
    out.push_back(p);
  }
  return out;
}

// Deterministic: the CoT quotes the item's title; pair 3's CoT is malformed.
// Throws on its `fail_on`-th batch (a crash).
struct FakeTeacher : TeacherModel {
  int batches = 0, fail_on = -1;
  bool cot = true;
  std::vector<int64_t> batch_sizes;
  int64_t cost(const Pair& p) const override { return static_cast<int64_t>(p.query.size()); }
  bool generates_cot() const override { return cot; }
  std::vector<TeacherOutput> run(const std::vector<Pair>& batch) override {
    if (batches++ == fail_on) throw std::runtime_error("simulated crash");
    batch_sizes.push_back(static_cast<int64_t>(batch.size()));
    std::vector<TeacherOutput> out;
    for (const Pair& p : batch) {
      TeacherOutput o;
      std::string word = p.item.title.substr(0, p.item.title.find(' '));
      o.cot = p.id == "p3" ? "[brand] nonsense\n[conclusion] exact\n"
                           : "[category] query: \"" + word + "\" | item: \"" + word + "\" | match\n" +
                                 "[brand] query: - | item: \"Harbor\" | absent\n[conclusion] partial\n";
      double a = static_cast<double>(std::stoi(p.id.substr(1)) + 1);
      o.grade_probs = {a / (a + 3), 1 / (a + 3), 2 / (a + 3)};
      out.push_back(o);
    }
    return out;
  }
};

}  // namespace

TEST(TeacherDriver, ShardsMergeInInputOrder) {
  auto dir = temp_dir("shards");
  auto pairs = make_pairs(7);
  GradeScale grades;
  FakeTeacher m0, m1;
  EXPECT_EQ(run_teacher_shard(m0, pairs, grades, {dir, 0, 2, 3, false}), 4);  // p0 p2 p4 p6
  EXPECT_EQ(run_teacher_shard(m1, pairs, grades, {dir, 1, 2, 3, false}), 3);  // p1 p3 p5
  EXPECT_EQ(m0.batch_sizes, (std::vector<int64_t>{3, 1}));
  EXPECT_TRUE(fs::exists(shard_file(dir, 0)));
  EXPECT_TRUE(fs::exists(shard_file(dir, 1)));
  auto recs = collect_in_order(dir, pairs, grades);
  ASSERT_EQ(recs.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(recs[i].id, pairs[i].id);
  EXPECT_TRUE(recs[3].flagged);
  EXPECT_FALSE(recs[2].flagged);
  EXPECT_NEAR(recs[0].grade_probs[0], 0.25, 1e-12);
  EXPECT_NEAR(recs[0].score, 0.125 + 0.5, 1e-12);
  // Processed longest first within a shard: even pairs have the long query, so rank 1 order is by id.
  auto shard0 = read_jsonl(shard_file(dir, 0));
  EXPECT_EQ(shard0.size(), 4u);
  fs::remove_all(dir);
}

TEST(TeacherDriver, ResumesAfterACrashAndACutLine) {
  auto dir = temp_dir("resume");
  auto pairs = make_pairs(6);
  GradeScale grades;
  FakeTeacher crashing;
  crashing.fail_on = 1;  // the second batch of 2 crashes
  EXPECT_THROW(run_teacher_shard(crashing, pairs, grades, {dir, 0, 1, 2, false}), std::runtime_error);
  EXPECT_EQ(done_ids(dir, grades).size(), 2u);
  EXPECT_THROW(collect_in_order(dir, pairs, grades), Error);
  // A crash mid-write leaves half a line.
  {
    std::ofstream f(shard_file(dir, 0), std::ios::app);
    f << "{\"id\": \"p5\", \"cot\": nul";
  }
  FakeTeacher again;
  EXPECT_EQ(run_teacher_shard(again, pairs, grades, {dir, 0, 1, 2, false}), 4);
  EXPECT_EQ(again.batch_sizes, (std::vector<int64_t>{2, 2}));
  auto recs = collect_in_order(dir, pairs, grades);
  ASSERT_EQ(recs.size(), 6u);
  EXPECT_EQ(read_jsonl(shard_file(dir, 0)).size(), 6u);
  // Nothing left: a third run does nothing.
  FakeTeacher idle;
  EXPECT_EQ(run_teacher_shard(idle, pairs, grades, {dir, 0, 1, 2, false}), 0);
  EXPECT_EQ(idle.batches, 0);
  fs::remove_all(dir);
}

TEST(TeacherDriver, RejectsDuplicateIds) {
  auto dir = temp_dir("dup");
  auto pairs = make_pairs(2);
  pairs[1].id = pairs[0].id;
  FakeTeacher m;
  EXPECT_THROW(run_teacher_shard(m, pairs, GradeScale{}, {dir, 0, 1, 2, false}), Error);
  fs::remove_all(dir);
}

TEST(TeacherOutputs, TargetsFileShapesTagsAndMetadata) {
  auto dir = temp_dir("targets");
  auto pairs = make_pairs(4);
  GradeScale grades;
  FakeTeacher m;
  run_teacher_shard(m, pairs, grades, {dir, 0, 1, 4, false});
  auto recs = collect_in_order(dir, pairs, grades);
  auto student = std::make_shared<test::FakeTokenizer>();
  TargetsConfig cfg;
  cfg.grades = grades;
  cfg.student = student;
  cfg.limits.max_length = 32;
  cfg.metadata["teacher"] = "fake";
  json stats = write_teacher_outputs(dir, recs, cfg);
  EXPECT_EQ(stats["pairs"], 4);
  EXPECT_EQ(stats["with_cot"], 3);
  EXPECT_EQ(stats["flagged"], 1);
  EXPECT_EQ(stats["flagged_by_reason"]["missing_query"], 1);

  auto lines = read_jsonl(dir + "/teacher.jsonl");
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3]["id"], "p3");
  EXPECT_TRUE(lines[3]["flagged"].get<bool>());

  SafetensorsFile st(dir + "/targets.safetensors");
  EXPECT_EQ(st.metadata().at("teacher"), "fake");
  EXPECT_EQ(st.metadata().at("student_tokenizer"), "fake:piece=100");
  EXPECT_EQ(json::parse(st.metadata().at("tag_set"))[1], "B-CAT");
  auto ids = st.load("input_ids"), bio = st.load("bio"), attn = st.load("attn_factor"), seg = st.load("segment");
  EXPECT_EQ(ids.sizes(), (std::vector<int64_t>{4, 32}));  // padded to max_length
  EXPECT_EQ(json::parse(st.metadata().at("special_ids"))["pad"], 0);
  EXPECT_EQ(ids.scalar_type(), torch::kInt32);
  EXPECT_EQ(bio.scalar_type(), torch::kUInt8);
  EXPECT_EQ(st.load("grade_probs").sizes(), (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(st.load("score").sizes(), (std::vector<int64_t>{4}));
  auto has_cot = st.load("has_cot");
  EXPECT_EQ(has_cot[3].item<uint8_t>(), 0);
  EXPECT_EQ(has_cot[1].item<uint8_t>(), 1);
  // Pair 1: [CLS] grey ␣sofa [SEP] Harbor ␣Sofa ␣in ␣Gray ␣| ␣brand: ␣Harbor [SEP] [PAD]... (12 tokens)
  // CoT: category "Harbor"/"Harbor" match; brand item "Harbor" absent (earlier step keeps its tags).
  EXPECT_EQ(bio[1][4].item<uint8_t>(), 1);   // B-CAT on the title's "Harbor"
  EXPECT_EQ(bio[1][10].item<uint8_t>(), 1);  // and on the brand field's "Harbor" (every occurrence)
  EXPECT_EQ(bio[1][1].item<uint8_t>(), 0);
  EXPECT_EQ(bio[3].sum().item<int64_t>(), 0);  // flagged: no tags made up
  // Factors: each segment sums to 1; padding 0.
  auto a1 = attn[1], s1 = seg[1];
  EXPECT_NEAR(a1.masked_select(s1 == 1).sum().item<float>(), 1.0f, 1e-5);
  EXPECT_NEAR(a1.masked_select(s1 == 2).sum().item<float>(), 1.0f, 1e-5);
  EXPECT_EQ(a1[13].item<float>(), 0.0f);
  EXPECT_EQ(ids[1][13].item<int32_t>(), 0);
  EXPECT_GT(a1[4].item<float>(), a1[5].item<float>());  // the decisive term weighs more
  EXPECT_TRUE(fs::exists(dir + "/teacher-stats.json"));
  fs::remove_all(dir);
}
