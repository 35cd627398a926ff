// The demo pipeline end to end (scripts/demo.sh on the cut of configs/reproduce/ci.env):
// every stage runs, every artifact is where DESIGN §2 puts it and passes `ellm inspect`
// (which applies every validation of io/), and every reported number is finite and in range.
// The figures themselves mean nothing at this budget; docs/results.md holds the real ones.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <unistd.h>

#include "../common/shell.h"
#include "ellm/util/build_paths.h"
#include "ellm/util/config.h"

namespace fs = std::filesystem;
using ellm::json;

namespace {

using ellm::test_support::sh;
using Result = ellm::test_support::ShellResult;
using ellm::test_support::tail;

json read_json(const fs::path& p) {
  std::ifstream in(p);
  return json::parse(in);
}

size_t count_lines(const fs::path& p) {
  std::ifstream in(p);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) n += !line.empty();
  return n;
}

void expect_unit_interval(const json& v, const std::string& what) {
  ASSERT_TRUE(v.is_number()) << what << " is " << v.dump();
  double x = v.get<double>();
  EXPECT_TRUE(std::isfinite(x) && x >= 0.0 && x <= 1.0) << what << " = " << x;
}

}  // namespace

TEST(Pipeline, DemoEndToEndOnTheCiCut) {
  const std::string src = ellm::source_dir();
  fs::path out = fs::temp_directory_path() / ("ellm_pipeline_" + std::to_string(::getpid()));
  fs::remove_all(out);
  Result r = sh("cd '" + src + "' && ELLM='" + ellm::ellm_binary() + "' JOBS=2 bash scripts/demo.sh --out '" +
                out.string() + "' --config '" + src + "/configs/reproduce/ci.env'");
  ASSERT_EQ(r.rc, 0) << tail(r.out);

  // Every stage finished and left its marker.
  for (const char* stage : {"data", "annotate", "tokenizer", "finetune", "teacher", "students"})
    EXPECT_TRUE(fs::exists(out / stage / ".done")) << stage;

  // Artifacts, each validated by `ellm inspect`.
  const std::vector<std::string> artifacts = {
      "data/train.pairs.jsonl",          "annotate/all/annotations.jsonl", "finetune/cot/final",
      "finetune/no-cot/final",           "teacher/cot-test/teacher.jsonl", "teacher/cot-test/targets.safetensors",
      "teacher/oof/teacher.jsonl",       "teacher/oof/targets.safetensors", "teacher/rule/targets.safetensors",
      "students/cross-encoder/mkd/seed-1/best", "students/two-tower/mkd/seed-1/best",
      "eval-test/cross-encoder/mkd/seed-1/scores.jsonl"};
  for (const auto& a : artifacts) {
    ASSERT_TRUE(fs::exists(out / a)) << a;
    Result inspect = sh("'" + ellm::ellm_binary() + "' inspect '" + (out / a).string() + "'");
    EXPECT_EQ(inspect.rc, 0) << a << ":\n" << tail(inspect.out);
  }
  EXPECT_TRUE(fs::exists(out / "tokenizer/teacher.model"));
  EXPECT_TRUE(fs::exists(out / "tokenizer/student.model"));

  // The out-of-fold teacher labelled every training pair exactly once.
  EXPECT_EQ(count_lines(out / "teacher/oof/teacher.jsonl"), count_lines(out / "data/train.pairs.jsonl"));
  EXPECT_EQ(count_lines(out / "teacher/cot-test/teacher.jsonl"), count_lines(out / "data/test.pairs.jsonl"));

  // Reports: every run of the grid, numbers finite and in range, CIs around the estimate.
  json results = read_json(out / "results.json");
  ASSERT_TRUE(results.is_array());
  std::set<std::string> runs;
  for (const json& row : results) {
    std::string name = row.at("model").get<std::string>() + "/" + row.at("variant").get<std::string>();
    runs.insert(name);
    const json& m = row.at("metrics");
    for (const char* k : {"auc", "f1", "accuracy"}) expect_unit_interval(m.at(k), name + " " + k);
    for (const char* k : {"pr_auc", "longtail_auc", "ndcg@10"})
      if (m.contains(k) && !m.at(k).is_null()) expect_unit_interval(m.at(k), name + " " + k);
    if (row.contains("ci95") && row["ci95"].contains("auc")) {
      double lo = row["ci95"]["auc"][0], hi = row["ci95"]["auc"][1];
      EXPECT_LE(lo, hi) << name;
      EXPECT_GE(lo, 0.0) << name;
      EXPECT_LE(hi, 1.0) << name;
    }
  }
  for (const char* want : {"overlap/rule", "teacher/cot", "teacher/no-cot", "cross-encoder/ce", "cross-encoder/mkd",
                           "cross-encoder/rule-bio", "two-tower/ce", "two-tower/mkd", "two-tower/rule-bio"})
    EXPECT_TRUE(runs.count(want)) << "results.json has no row " << want;

  json report = read_json(out / "eval-test/teacher/cot/report.json");
  EXPECT_TRUE(report.is_object());
  EXPECT_TRUE(fs::exists(out / "results.md"));
  EXPECT_TRUE(fs::exists(out / "RESULTS.md"));
  fs::remove_all(out);
}
