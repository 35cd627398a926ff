// Slices, the report's numbers against direct metric calls, the scores-file
// reader's errors, the written files, and aggregation over seeds.
#include "ellm/eval/report.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "ellm/eval/aggregate.h"
#include "ellm/eval/metrics.h"
#include "ellm/eval/predictions.h"
#include "ellm/io/atomic_file.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "../common/expect_error.h"

using ellm::test_support::error_of;

using namespace ellm;
namespace fs = std::filesystem;


namespace {

Pair make_pair(const std::string& id, const std::string& qid, const std::string& query, const std::string& title,
               int label) {
  Pair p;
  p.id = id;
  p.query_id = qid;
  p.query = query;
  p.item.title = title;
  p.label = label;
  p.split = "dev";
  return p;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ellm_eval_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Eight dev pairs over three queries; grades 0/1/2, positive from 1.
std::vector<Pair> dev_pairs() {
  return {make_pair("a1", "qa", "grey sofa", "Grey Sofa", 2),      make_pair("a2", "qa", "grey sofa", "Red Chair", 0),
          make_pair("a3", "qa", "grey sofa", "Grey Couch", 1),     make_pair("b1", "qb", "zinc bucket", "Zinc Pail", 2),
          make_pair("b2", "qb", "zinc bucket", "Paint Roller", 0), make_pair("c1", "qc", "red chairs", "Red Chair", 2),
          make_pair("c2", "qc", "red chairs", "Blue Chair", 1),    make_pair("c3", "qc", "red chairs", "Lamp", 0)};
}

std::vector<Pair> train_pairs() {
  // "grey sofa" seen 3 times, "red chair" (= "red chairs" normalised) once; "zinc" never.
  return {make_pair("t1", "x", "grey sofa", "t", 1), make_pair("t2", "x", "Grey Sofas", "t", 0),
          make_pair("t3", "x", "grey  sofa", "t", 2), make_pair("t4", "y", "red chair", "t", 2),
          make_pair("t5", "z", "bucket", "t", 0)};
}

std::vector<Prediction> probs_for(const std::vector<std::vector<double>>& probs) {
  std::vector<Prediction> out;
  for (const auto& p : probs) out.push_back({p, std::numeric_limits<double>::quiet_NaN(), std::nullopt});
  return out;
}

EvalInput dev_input() {
  EvalInput in;
  in.pairs = dev_pairs();
  in.preds = probs_for({{0.1, 0.2, 0.7},
                        {0.8, 0.1, 0.1},
                        {0.3, 0.4, 0.3},
                        {0.6, 0.2, 0.2},  // a missed exact
                        {0.7, 0.2, 0.1},
                        {0.2, 0.2, 0.6},
                        {0.5, 0.25, 0.25},
                        {0.9, 0.05, 0.05}});
  return in;
}

}  // namespace

TEST(Report, SlicesByTrainingFrequencyAndVocabulary) {
  TrainingStats st = training_stats(train_pairs());
  EXPECT_EQ(st.query_freq.at("grey sofa"), 3);
  EXPECT_EQ(st.query_freq.at("red chair"), 1);
  auto slices = make_slices(dev_pairs(), &st, {1, 2});
  std::map<std::string, std::vector<size_t>> by;
  for (const auto& s : slices) by[s.name] = s.rows;
  EXPECT_EQ(by["all"].size(), 8u);
  EXPECT_EQ(by["longtail"], (std::vector<size_t>{3, 4}));  // "zinc" is not a training-query word
  EXPECT_EQ(by["unseen"], (std::vector<size_t>{3, 4}));    // "zinc bucket" never occurs
  EXPECT_EQ(by["freq 1"], (std::vector<size_t>{5, 6, 7}));
  EXPECT_TRUE(by["freq 2"].empty());
  EXPECT_EQ(by["freq >2"], (std::vector<size_t>{0, 1, 2}));
  EXPECT_EQ(make_slices(dev_pairs(), nullptr, {1}).size(), 1u);
  EXPECT_CONTAINS(error_of([&] { make_slices(dev_pairs(), &st, {5, 2}); }), "must increase");
}

TEST(Report, NumbersMatchTheMetricFunctions) {
  EvalInput in = dev_input();
  TrainingStats st = training_stats(train_pairs());
  EvalOptions opt;
  opt.bootstrap = 50;
  opt.seed = 3;
  json r = evaluate(in, &st, opt);
  EXPECT_EQ(r["schema"], kReportSchema);
  EXPECT_EQ(r["binary_score"], "p_relevant");
  // p_relevant = p1 + p2
  std::vector<double> s = {0.9, 0.2, 0.7, 0.4, 0.3, 0.8, 0.5, 0.1};
  std::vector<int> y = {1, 0, 1, 1, 0, 1, 1, 0};
  const json& all = r["overall"];
  EXPECT_NEAR(all["auc"].get<double>(), roc_auc(s, y), 1e-12);
  EXPECT_NEAR(all["pr_auc"].get<double>(), pr_auc(s, y), 1e-12);
  EXPECT_NEAR(all["f1"].get<double>(), counts_at(s, y, 0.5).f1(), 1e-12);
  EXPECT_NEAR(all["accuracy"].get<double>(), counts_at(s, y, 0.5).accuracy(), 1e-12);
  EXPECT_EQ(all["n"], 8);
  EXPECT_EQ(all["queries"], 3);
  EXPECT_EQ(all["positives"], 5);
  // argmax grades: 2 0 1 0 0 2 0 0 vs labels 2 0 1 2 0 2 1 0 → 6 of 8
  EXPECT_NEAR(all["grade_accuracy"].get<double>(), 0.75, 1e-12);
  EXPECT_TRUE(all["ci95"]["auc"].is_array());
  EXPECT_LE(all["ci95"]["auc"][0].get<double>(), all["ci95"]["auc"][1].get<double>());
  EXPECT_TRUE(all["ece"].is_number());
  // the long-tail slice holds the zinc query only: labels 2, 0 scored .4 and .3 → AUC 1
  json tail;
  for (const auto& sl : r["slices"])
    if (sl["name"] == "longtail") tail = sl;
  EXPECT_DOUBLE_EQ(tail["auc"].get<double>(), 1.0);
  EXPECT_EQ(tail["n"], 2);
  // per grade: "exact" rows a1 b1 c1 scored .9 .4 .8; at 0.5, 2 of 3 right
  EXPECT_NEAR(r["per_grade"][2]["mean_score"].get<double>(), 0.7, 1e-12);
  EXPECT_NEAR(r["per_grade"][2]["binary_accuracy"].get<double>(), 2.0 / 3.0, 1e-12);
  // seeded: the same seed gives the same intervals
  json again = evaluate(in, &st, opt);
  EXPECT_EQ(again["overall"]["ci95"], all["ci95"]);
}

TEST(Report, OneClassSliceIsNullNotAnError) {
  EvalInput in = dev_input();
  for (auto& p : in.pairs) p.label = 2;
  EvalOptions opt;
  opt.bootstrap = 10;
  json r = evaluate(in, nullptr, opt);
  EXPECT_TRUE(r["overall"]["auc"].is_null());
  EXPECT_TRUE(r["overall"]["ci95"]["auc"].is_null());
  EXPECT_TRUE(r["overall"]["f1"].is_number());
  EXPECT_FALSE(report_markdown(r).empty());
}

TEST(Report, RejectsNaNAndUnlabelled) {
  EvalInput in = dev_input();
  in.preds = std::vector<Prediction>(in.pairs.size());
  for (auto& p : in.preds) p.score = 0.5;
  in.preds[2].score = std::numeric_limits<double>::quiet_NaN();
  EXPECT_CONTAINS(error_of([&] { evaluate(in, nullptr, {}); }), "pair 'a3': score is nan");
  in.preds[2].score = 0.5;
  in.pairs[1].label = -1;
  EXPECT_CONTAINS(error_of([&] { evaluate(in, nullptr, {}); }), "pair 'a2': label -1");
}

TEST(Predictions, ScoresFileIsJoinedByIdAndValidated) {
  fs::path d = temp_dir("scores");
  auto pairs = dev_pairs();
  GradeScale scale;
  auto write = [&](const std::string& text) {
    std::ofstream((d / "s.jsonl").string()) << text;
    return (d / "s.jsonl").string();
  };
  std::string ok;
  for (const auto& p : pairs) ok += "{\"id\":\"" + p.id + "\",\"score\":0.25}\n";
  ok += "{\"id\":\"other-split\",\"score\":1}\n";
  int64_t ignored = 0;
  auto preds = read_scores_file(write(ok), pairs, scale, &ignored);
  EXPECT_EQ(ignored, 1);
  EXPECT_DOUBLE_EQ(preds[3].score, 0.25);

  EXPECT_CONTAINS(error_of([&] { read_scores_file(write("{\"id\":\"a1\",\"score\":0.1}\n"), pairs, scale); }),
                  "no scores for pair 'a2'");
  EXPECT_CONTAINS(error_of([&] { read_scores_file(write("{\"id\":\"a1\",\"grade_probs\":[0.5,0.5]}\n"), pairs, scale); }),
                  "s.jsonl:1: 'grade_probs' has 2 values");
  EXPECT_CONTAINS(
      error_of([&] { read_scores_file(write("\n{\"id\":\"a1\",\"grade_probs\":[0.5,0.5,0.5]}\n"), pairs, scale); }),
      "s.jsonl:2: grade_probs sum to 1.5");
  EXPECT_CONTAINS(error_of([&] { read_scores_file(write("{\"id\":\"a1\"}\n"), pairs, scale); }),
                  "neither 'grade_probs' nor 'score'");
  EXPECT_CONTAINS(
      error_of([&] { read_scores_file(write("{\"id\":\"a1\",\"score\":1}\n{\"id\":\"a1\",\"score\":1}\n"), pairs, scale); }),
      "s.jsonl:2: id 'a1' already scored at");
  // grade_probs keyed by grade name
  std::string named;
  for (const auto& p : pairs)
    named += "{\"id\":\"" + p.id + "\",\"grade_probs\":{\"exact\":0.5,\"partial\":0.25,\"irrelevant\":0.25},\"cot\":\"x\"}\n";
  auto np = read_scores_file(write(named), pairs, scale);
  EXPECT_EQ(np[0].grade_probs, (std::vector<double>{0.25, 0.25, 0.5}));
  EXPECT_EQ(*np[0].cot, "x");
  EXPECT_DOUBLE_EQ(binary_score(np[0], scale), 0.75);
  fs::remove_all(d);
}

TEST(Predictions, ModelDirectoriesSayWhatIsMissing) {
  fs::path d = temp_dir("model");
  write_file_atomic((d / "config.json").string(), R"({"model_type": "ellm-cross-encoder"})");
  PredictionSource src{PredictionSource::Kind::model, d.string(), 8};
  // a student directory with no settings or weights is refused, naming the file
  EXPECT_CONTAINS(error_of([&] { load_predictions(src, dev_pairs(), GradeScale{}); }), "config.json");
  // a teacher is scored by `ellm teacher`, and eval says so
  write_file_atomic((d / "config.json").string(), R"({"model_type": "qwen2"})");
  EXPECT_CONTAINS(error_of([&] { load_predictions(src, dev_pairs(), GradeScale{}); }), "ellm teacher");
  write_file_atomic((d / "config.json").string(), R"({"model_type": "bert"})");
  EXPECT_CONTAINS(error_of([&] { load_predictions(src, dev_pairs(), GradeScale{}); }), "model_type 'bert'");
  fs::remove_all(d);
  // the overlap rule needs no model
  auto o = overlap_predictions(dev_pairs());
  EXPECT_DOUBLE_EQ(o[0].score, 1.0);
  EXPECT_DOUBLE_EQ(o[1].score, 0.0);
}

TEST(Report, WritesJsonMarkdownAndPlotData) {
  fs::path d = temp_dir("write");
  EvalInput in = dev_input();
  EvalOptions opt;
  opt.bootstrap = 20;
  json r = evaluate(in, nullptr, opt);
  r["data"] = {{"fingerprint", pairs_fingerprint(in.pairs)}};
  write_report(d.string(), r, in, find_gnuplot().empty() ? "none" : "svg");
  json back = read_json_file((d / "report.json").string());
  EXPECT_EQ(back["version"], kReportVersion);
  EXPECT_TRUE(fs::exists(d / "report.md"));
  EXPECT_TRUE(fs::exists(d / "plots" / "roc.tsv"));
  EXPECT_TRUE(fs::exists(d / "plots" / "reliability.tsv"));
  if (!find_gnuplot().empty()) {
    EXPECT_EQ(back["plots"].size(), 3u);
    EXPECT_TRUE(fs::exists(d / "plots" / "roc.svg"));
  }
  EXPECT_NE(read_file((d / "report.md").string()).find("| all | 8 | 3 | 5 |"), std::string::npos);
  fs::remove_all(d);
}

namespace {
// A minimal report.json as ellm eval writes it.
void fake_report(const fs::path& dir, const std::string& model, const std::string& variant, int seed, double auc,
                 double tail_auc, const std::string& fingerprint = "f-8") {
  json r = {{"schema", kReportSchema},
            {"version", kReportVersion},
            {"data", {{"fingerprint", fingerprint}}},
            {"meta", {{"model", model}, {"variant", variant}}},
            {"overall",
             {{"auc", auc}, {"pr_auc", auc - 0.1}, {"f1", 0.5}, {"accuracy", 0.6}, {"ndcg@10", 0.7}, {"ece", nullptr},
              {"ci95", {{"auc", {auc - 0.02, auc + 0.02}}}}}},
            {"slices", json::array({{{"name", "longtail"}, {"auc", tail_auc}}})}};
  if (seed >= 0) r["meta"]["seed"] = seed;
  fs::create_directories(dir);
  write_file_atomic((dir / "report.json").string(), r.dump());
}
}  // namespace

TEST(Aggregate, MeanStdOverSeedsAndPairedDeltas) {
  fs::path d = temp_dir("agg");
  double ce[] = {0.60, 0.62, 0.64}, mkd[] = {0.65, 0.66, 0.70};
  for (int s = 0; s < 3; ++s) {
    fake_report(d / ("ce" + std::to_string(s)), "cross-encoder", "ce", s + 1, ce[s], 0.5);
    fake_report(d / ("mkd" + std::to_string(s)), "cross-encoder", "mkd", s + 1, mkd[s], 0.55 + 0.01 * s);
  }
  fake_report(d / "overlap", "overlap", "rule", -1, 0.685, 0.6);
  Aggregate agg = aggregate_reports(find_reports({d.string()}));
  ASSERT_EQ(agg.rows.size(), 3u);
  EXPECT_EQ(agg.rows[0].model, "overlap");  // controls before students; ce before mkd
  EXPECT_EQ(agg.rows[1].variant, "ce");
  const AggregateRow& m = agg.rows[2];
  EXPECT_EQ(m.variant, "mkd");
  EXPECT_NEAR(m.metrics.at("auc").mean, 0.67, 1e-12);
  EXPECT_NEAR(m.metrics.at("auc").std, std::sqrt((0.0004 + 0.0001 + 0.0009) / 2), 1e-12);
  // deltas per seed: .05 .04 .06 → mean .05, std .01
  EXPECT_NEAR(m.delta.at("auc").mean, 0.05, 1e-12);
  EXPECT_NEAR(m.delta.at("auc").std, 0.01, 1e-12);
  EXPECT_EQ(m.delta.at("auc").n, 3);
  EXPECT_NEAR(m.delta.at("longtail_auc").mean, 0.06, 1e-12);
  EXPECT_NEAR(m.ci95.at("auc").first, 0.65, 1e-12);
  EXPECT_TRUE(agg.rows[0].delta.empty());
  EXPECT_TRUE(std::isnan(agg.rows[0].metrics.at("auc").std));  // one run

  json j = results_json(agg);
  ASSERT_TRUE(j.is_array());
  EXPECT_EQ(j[2]["model"], "cross-encoder");
  EXPECT_NEAR(j[2]["metrics"]["longtail_auc"].get<double>(), 0.56, 1e-12);
  EXPECT_TRUE(j[2]["metrics"]["ece"].is_null());
  EXPECT_EQ(j[2]["delta_vs_ce"]["auc"]["n"], 3);
  EXPECT_EQ(j[2]["ci95"]["auc"].size(), 2u);
  std::string md = results_markdown(agg);
  EXPECT_CONTAINS(md, "| cross-encoder | mkd | 3 | 67.0 ± 2.6 [65.0, 69.0] |");
  EXPECT_CONTAINS(md, "+5.0 ± 1.0");

  // mixing evaluation sets, or the same run twice, is refused
  fake_report(d / "bad", "two-tower", "ce", 1, 0.6, 0.5, "other");
  EXPECT_CONTAINS(error_of([&] { aggregate_reports(find_reports({d.string()})); }), "other pairs");
  fs::remove_all(d / "bad");
  fake_report(d / "dup", "cross-encoder", "ce", 1, 0.6, 0.5);
  EXPECT_CONTAINS(error_of([&] { aggregate_reports(find_reports({d.string()})); }), "are both cross-encoder / ce seed '1'");
  fs::remove_all(d);
}

TEST(Report, TeacherCotParseRateAndVerdictAccuracy) {
  EvalInput in = dev_input();
  in.pairs[0].truth = {{"brand", "match"}, {"category", "match"}};
  in.pairs[1].truth = {{"brand", "mismatch"}};
  in.preds[0].cot = "[brand] query: \"grey\" | item: \"Grey\" | match\n[conclusion] exact\n";
  in.preds[1].cot = "[brand] query: \"grey\" | item: \"Red\" | match\n[conclusion] irrelevant\n";
  in.preds[2].cot = "not a cot";
  EvalOptions opt;
  opt.bootstrap = 0;
  json t = evaluate(in, nullptr, opt)["teacher_cot"];
  EXPECT_EQ(t["pairs_with_cot"], 3);
  EXPECT_EQ(t["parsed"], 2);
  EXPECT_NEAR(t["parse_rate"].get<double>(), 2.0 / 3.0, 1e-12);
  EXPECT_EQ(t["parse_failures"]["missing_tag"], 1);
  // brand: 1 of 2 right; category: stated in the truth, missing from the CoT
  EXPECT_NEAR(t["verdict_accuracy"].get<double>(), 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(t["verdict_accuracy_per_dimension"]["brand"]["accuracy"].get<double>(), 0.5, 1e-12);
  EXPECT_EQ(t["verdict_accuracy_per_dimension"]["category"]["missing"], 1);
}
