// ellm distill's TrainTask end to end on a tiny synthetic task: teacher
// targets built with the real CoT parser and targets.h on the student layout,
// every loss term logged, best/ and final/ student directories, refusals.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "../common/tiny_tokenizer.h"
#include "ellm/distill/distill_task.h"
#include "ellm/distill/targets.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/text/cot.h"
#include "ellm/text/item_text.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kWords = {"grey", "gray", "sofa", "chair", "oak", "table", "lamp", "red", "blue", "rug"};

std::shared_ptr<test_support::TinyTokenizer> tok() { return std::make_shared<test_support::TinyTokenizer>(kWords); }

// Relevant (exact) when the item names the query's product word.
std::vector<Pair> make_pairs(int n, const std::string& split, int offset) {
  const std::vector<std::string> products = {"sofa", "chair", "table", "lamp", "rug"};
  const std::vector<std::string> colors = {"grey", "red", "blue", "oak"};
  std::vector<Pair> ps;
  for (int i = 0; i < n; ++i) {
    int a = (i + offset) % 5, b = (i * 3 + offset + (i % 2)) % 5;
    Pair p;
    p.id = split + "-" + std::to_string(i);
    p.query = colors[i % 4] + " " + products[a];
    p.item.title = colors[(i + 1) % 4] + " " + products[b];
    p.label = a == b ? 2 : 0;
    p.split = split;
    ps.push_back(p);
  }
  return ps;
}

StudentConfig small(StudentKind kind) {
  StudentConfig c;
  c.kind = kind;
  c.bert.vocab_size = 16;
  c.bert.hidden_size = 16;
  c.bert.num_hidden_layers = 1;
  c.bert.num_attention_heads = 2;
  c.bert.intermediate_size = 32;
  c.bert.max_position_embeddings = 32;
  c.bert.hidden_dropout_prob = 0;
  c.bert.attention_probs_dropout_prob = 0;
  c.limits = {16, 8, 12};
  c.projection_dim = 8;
  return c;
}

// A teacher directory as `ellm teacher` writes it, on the cross layout of `in`.
// The CoT names the product dimension as "category"; pair `skip_cot` gets no CoT.
void write_teacher(const std::string& dir, const std::vector<Pair>& pairs, const StudentInputBuilder& in, int64_t L,
                   const std::string& skip_cot = "") {
  GradeScale scale;
  const int64_t n = static_cast<int64_t>(pairs.size());
  auto ids = torch::zeros({n, L}, torch::kInt), bio = torch::zeros({n, L}, torch::kByte);
  auto attn = torch::zeros({n, L}), probs = torch::zeros({n, 3}), score = torch::zeros({n});
  std::vector<json> records;
  for (int64_t r = 0; r < n; ++r) {
    const Pair& p = pairs[r];
    std::string text = item_text(p.item);
    std::string q_product = p.query.substr(p.query.find(' ') + 1), i_product = text.substr(text.find(' ') + 1);
    std::string cot_text = "[category] query: \"" + q_product + "\" | item: \"" + i_product + "\" | " +
                           (p.label == 2 ? "match" : "mismatch") + "\n[conclusion] " + (p.label == 2 ? "exact" : "irrelevant");
    Cot cot = parse_cot(cot_text, scale);
    locate_terms(cot, p.query, text);
    StudentTokens x = in.cross(p.query, text);
    auto tags = bio_tags(x.alignment, cot);
    auto f = attention_factors(x.alignment, cot, AttentionFactors());
    bool has = p.id != skip_cot;
    for (size_t t = 0; t < x.size(); ++t) {
      ids[r][t] = static_cast<int>(x.ids[t]);
      if (has) bio[r][t] = tags[t], attn[r][t] = f[t];
    }
    float pe = p.label == 2 ? 0.8f : 0.1f;
    probs[r][0] = 0.9f - pe;
    probs[r][1] = 0.1f;
    probs[r][2] = pe;
    score[r] = 0.1f * 0.5f + pe;
    records.push_back({{"id", p.id}, {"cot", has ? json(cot_text) : json(nullptr)},
                       {"grade_probs", {0.9f - pe, 0.1f, pe}}, {"score", 0.05f + pe}});
  }
  write_jsonl(dir + "/teacher.jsonl", records);
  save_safetensors(dir + "/targets.safetensors",
                   {{"input_ids", ids}, {"bio", bio}, {"attn_factor", attn}, {"grade_probs", probs}, {"score", score}},
                   {{"tag_set", "O,B-CAT,I-CAT,B-BRAND,I-BRAND,B-MODEL,I-MODEL,B-ATTR,I-ATTR"}});
}

TrainConfig short_run(int64_t steps) {
  TrainConfig c = train_config_from_json(train_default_config());
  c.max_steps = steps;
  c.batch_size = 8;
  c.micro_batch_size = 4;
  c.lr = 3e-3;
  c.log_every = 2;
  c.eval_every = 4;
  c.seed = 1;
  return c;
}

}  // namespace

TEST(Distill, AucByHandWithTies) {
  EXPECT_DOUBLE_EQ(binary_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(binary_auc({0.5, 0.5}, {0, 1}), 0.5);
  EXPECT_DOUBLE_EQ(binary_auc({0.9, 0.2, 0.3}, {1, 0, 0}), 1.0);
  EXPECT_TRUE(std::isnan(binary_auc({0.1, 0.2}, {1, 1})));
}

TEST(Distill, CrossEncoderMkdLogsEveryTermAndWritesStudents) {
  auto t = tok();
  auto train = make_pairs(16, "train", 0), dev = make_pairs(8, "dev", 2);
  Student student(small(StudentKind::cross_encoder), t, 0);
  std::string tdir = fresh_dir("teacher_ce");
  write_teacher(tdir, train, student.inputs(), 16, "train-3");
  TeacherTargets targets = read_teacher_targets(tdir, 3);
  EXPECT_FALSE(targets.has_cot[3]);
  EXPECT_TRUE(targets.has_cot[0]);
  DistillLossConfig loss;
  loss.score = 1.0;
  loss.bio = 0.5;
  DistillTask task(student, "", train, dev, &targets, loss, 4);
  EXPECT_EQ(task.with_teacher(), 16);
  EXPECT_EQ(task.with_cot(), 15);
  std::string out = fresh_dir("out_ce");
  Distributed single;
  TrainResult r = Trainer(short_run(8), out, single).fit(task, false);
  EXPECT_EQ(r.steps, 8);
  auto metrics = read_jsonl(out + "/metrics.jsonl");
  bool saw_terms = false, saw_eval = false;
  for (auto& m : metrics) {
    if (m.contains("loss_bio") && m.contains("loss_score") && m.contains("loss_ce")) {
      saw_terms = true;
      EXPECT_NEAR(m["loss"].get<double>(), m["loss_ce"].get<double>() + m["loss_score"].get<double>() + m["loss_bio"].get<double>(), 1e-4);
    }
    if (m.contains("eval")) saw_eval = saw_eval || m["eval"].contains("auc");
  }
  EXPECT_TRUE(saw_terms);
  EXPECT_TRUE(saw_eval);
  ASSERT_TRUE(fs::exists(out + "/final/model.safetensors"));
  ASSERT_TRUE(fs::exists(out + "/best/eval.json"));
  EXPECT_EQ(read_json_file(out + "/final/config.json")["model_type"], "ellm-cross-encoder");
  auto loaded = load_student(out + "/final", t);
  EXPECT_TRUE(torch::allclose(loaded->grade_probs(dev, 8), student.grade_probs(dev, 8), 1e-6, 1e-7));
}

TEST(Distill, TwoTowerMkdLearnsAndLogsAttention) {
  auto t = tok();
  auto train = make_pairs(32, "train", 0), dev = make_pairs(16, "dev", 1);
  Student student(small(StudentKind::two_tower), t, 0);
  std::string tdir = fresh_dir("teacher_tt");
  write_teacher(tdir, train, student.inputs(), 16);
  TeacherTargets targets = read_teacher_targets(tdir, 3);
  DistillLossConfig loss;
  loss.score = 1.0;
  loss.attn = 0.5;
  loss.adjust_pooling = true;
  DistillTask task(student, "", train, dev, &targets, loss, 16);
  double before = task.evaluate().metrics.value("ce", 0.0);
  std::string out = fresh_dir("out_tt");
  Distributed single;
  auto cfg = short_run(40);
  cfg.lr = 1e-2;
  cfg.eval_every = 0;
  Trainer(cfg, out, single).fit(task, false);
  bool saw_attn = false;
  for (auto& m : read_jsonl(out + "/metrics.jsonl")) saw_attn = saw_attn || m.contains("loss_attn");
  EXPECT_TRUE(saw_attn);
  // Training on the rule "the item names the query's product" lowers the dev CE.
  double after = task.evaluate().metrics.value("ce", 0.0);
  EXPECT_LT(after, before);
  EXPECT_EQ(read_json_file(out + "/final/config.json")["model_type"], "ellm-two-tower");
}

// The cross-encoder row keeps more item tokens (max_length 16) than the item tower does
// (max_item_length 12): the row's item tokens must be matched against the tower's text
// tokens, not against its closing [SEP] (a two-tower CoT run on long titles used to stop here).
TEST(Distill, TwoTowerTargetsOnItemsLongerThanTheTower) {
  auto t = tok();
  auto train = make_pairs(8, "train", 0);
  for (auto& p : train) p.item.title += " grey oak red blue rug lamp oak grey red blue";  // 12 words
  Student student(small(StudentKind::two_tower), t, 0);
  ASSERT_GT(student.inputs().cross(train[0].query, item_text(train[0].item)).size(),
            student.inputs().item_tower(item_text(train[0].item)).size() - 1);
  std::string tdir = fresh_dir("teacher_long");
  write_teacher(tdir, train, student.inputs(), 16);
  TeacherTargets targets = read_teacher_targets(tdir, 3);
  DistillLossConfig loss;
  loss.attn = 0.5;
  DistillTask task(student, "", train, {}, &targets, loss, 16);
  EXPECT_EQ(task.num_examples(), 8);
}

TEST(Distill, RefusesTargetsBuiltForAnotherLayoutAndMisplacedTerms) {
  auto t = tok();
  auto train = make_pairs(8, "train", 0);
  Student student(small(StudentKind::cross_encoder), t, 0);
  // Targets written with max_length 6: the second pair's row differs from the student's 16-token encoding.
  StudentInputBuilder other(t, {6, 8, 12});
  std::string tdir = fresh_dir("teacher_bad");
  write_teacher(tdir, train, other, 16);
  TeacherTargets targets = read_teacher_targets(tdir, 3);
  DistillLossConfig loss;
  loss.bio = 1.0;
  try {
    DistillTask task(student, "", train, {}, &targets, loss, 4);
    FAIL() << "expected a layout mismatch";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pair train-"), std::string::npos) << e.what();
  }
  // Without teacher targets only L_ce is possible.
  DistillLossConfig kd;
  kd.score = 1.0;
  EXPECT_THROW(DistillTask(student, "", train, {}, nullptr, kd, 4), Error);
  // attn is a two-tower term.
  DistillLossConfig attn;
  attn.attn = 1.0;
  EXPECT_THROW(DistillTask(student, "", train, {}, &targets, attn, 4), Error);
}

// train.precision = "bf16" on both students with every MKD term on: the loss curve follows
// the fp32 run's step for step (bf16 matmuls, fp32 losses and master weights), and the
// trained students score the dev pairs alike.
TEST(Distill, Bf16AutocastTrainingFollowsFp32) {
  auto t = tok();
  auto train = make_pairs(16, "train", 0), dev = make_pairs(8, "dev", 2);
  for (StudentKind kind : {StudentKind::cross_encoder, StudentKind::two_tower}) {
    const bool cross = kind == StudentKind::cross_encoder;
    std::map<std::string, std::vector<double>> curves;
    std::map<std::string, torch::Tensor> dev_probs;
    for (std::string precision : {"fp32", "bf16"}) {
      Student student(small(kind), t, 0);
      std::string tdir = fresh_dir("teacher_prec_" + precision);
      write_teacher(tdir, train, student.inputs(), 16);
      TeacherTargets targets = read_teacher_targets(tdir, 3);
      DistillLossConfig loss;
      loss.score = 1.0;
      (cross ? loss.bio : loss.attn) = 0.5;
      loss.adjust_pooling = !cross;
      DistillTask task(student, "", train, dev, &targets, loss, 8);
      std::string out = fresh_dir("out_prec_" + precision);
      Distributed single;
      auto cfg = short_run(12);
      cfg.precision = precision;
      cfg.log_every = 1;
      Trainer(cfg, out, single).fit(task, false);
      for (auto& m : read_jsonl(out + "/metrics.jsonl"))
        if (m.contains("loss")) curves[precision].push_back(m["loss"].get<double>());
      dev_probs[precision] = student.grade_probs(dev, 8);  // fp32 scoring of both
    }
    ASSERT_EQ(curves["fp32"].size(), 12u);
    ASSERT_EQ(curves["bf16"].size(), 12u);
    // The two-tower's logits are its cosine (computed in bf16 under autocast: ±2⁻⁸) times
    // slopes up to ±5, and this short run's lr is aggressive (its loss jumps 3.0 → 1.1 → 2.4),
    // so its curves wander further apart step by step (measured: ≤ 4.4%) before ending
    // together (0.9134 vs 0.9125); the cross-encoder's stay within 3%.
    const double rel = cross ? 0.03 : 0.06, probs_tol = cross ? 0.05 : 0.1;
    for (size_t i = 0; i < 12; ++i)
      EXPECT_NEAR(curves["bf16"][i], curves["fp32"][i], rel * curves["fp32"][i] + 0.01)
          << student_model_type(kind) << " step " << i + 1;
    EXPECT_NEAR(curves["bf16"].back(), curves["fp32"].back(), 0.02 * curves["fp32"].back()) << student_model_type(kind);
    EXPECT_LT((dev_probs["bf16"] - dev_probs["fp32"]).abs().max().item<double>(), probs_tol) << student_model_type(kind);
  }
}
