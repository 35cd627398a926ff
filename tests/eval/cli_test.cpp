// `ellm eval` and `ellm eval aggregate` as a user runs them, and the
// reproduction script's plan (--dry-run).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>


#include "ellm/io/atomic_file.h"
#include "ellm/util/config.h"
#include "ellm/util/build_paths.h"
#include "../common/shell.h"

namespace fs = std::filesystem;
using ellm::json;

namespace {

using ellm::test_support::sh;
using Result = ellm::test_support::ShellResult;

fs::path make_data() {
  fs::path d = fs::temp_directory_path() / ("ellm_eval_cli_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  std::ofstream pairs((d / "pairs.jsonl").string());
  const char* queries[] = {"grey sofa", "oak table", "zinc bucket", "red lamp"};
  const char* titles[] = {"Grey Sofa", "Oak Dining Table", "Blue Rug", "Red Table Lamp", "Zinc Bucket 5 gal"};
  int id = 0;
  for (int q = 0; q < 4; ++q)
    for (int t = 0; t < 5; ++t) {
      std::string split = q == 3 ? "train" : "dev";
      int label = (t == q || (q == 3 && t == 3) || (q == 2 && t == 4)) ? 2 : (t % 2);
      pairs << json{{"id", "p" + std::to_string(id++)}, {"query_id", "q" + std::to_string(q)}, {"query", queries[q]},
                    {"item", {{"title", titles[t]}}}, {"label", label}, {"split", split}}
                   .dump()
            << "\n";
    }
  pairs.close();
  ellm::write_file_atomic((d / "dataset.json").string(),
                          R"({"grades": {"labels": ["irrelevant", "partial", "exact"], "values": [0, 0.5, 1], "positive_from": 2}})");
  return d;
}

}  // namespace

TEST(EvalCli, OverlapReportThenAggregate) {
  fs::path d = make_data();
  const std::string ellm = ellm::ellm_binary();
  for (int seed : {1, 2}) {
    Result r = sh(ellm + " eval --overlap --pairs " + (d / "pairs.jsonl").string() + " --split dev --train-pairs " +
                  (d / "pairs.jsonl").string() + " --bootstrap 50 --plots none --out " +
                  (d / ("run" + std::to_string(seed))).string() + " --meta model=overlap --meta variant=rule --meta seed=" +
                  std::to_string(seed));
    ASSERT_EQ(r.rc, 0) << r.out;
    EXPECT_NE(r.out.find("pairs 15"), std::string::npos) << r.out;
  }
  json rep = ellm::read_json_file((d / "run1" / "report.json").string());
  EXPECT_EQ(rep["schema"], "ellm.eval.report");
  EXPECT_EQ(rep["data"]["n"], 15);
  EXPECT_EQ(rep["positive_grades"], json::array({"exact"}));  // from dataset.json
  EXPECT_EQ(rep["meta"]["seed"], 1);
  double auc = rep["overall"]["auc"].get<double>();
  EXPECT_GT(auc, 0.5);
  EXPECT_LE(auc, 1.0);
  EXPECT_TRUE(fs::exists(d / "run1" / "scores.jsonl"));
  EXPECT_TRUE(fs::exists(d / "run1" / "report.md"));

  // the dev threshold carried to another run
  Result t = sh(ellm + " eval --overlap --pairs " + (d / "pairs.jsonl").string() + " --split dev --bootstrap 0 " +
                "--plots none --threshold-from " + (d / "run1" / "report.json").string() + " --out " +
                (d / "run3").string());
  ASSERT_EQ(t.rc, 0) << t.out;
  json rep3 = ellm::read_json_file((d / "run3" / "report.json").string());
  EXPECT_EQ(rep3["options"]["threshold"], rep["overall"]["threshold_best"]);
  EXPECT_TRUE(rep3["overall"]["ci95"].is_null() || !rep3["overall"].contains("ci95"));

  Result a = sh(ellm + " eval aggregate --reports " + (d / "run1").string() + " " + (d / "run2").string() + " --out " +
                (d / "agg").string());
  ASSERT_EQ(a.rc, 0) << a.out;
  json res = ellm::read_json_file((d / "agg" / "results.json").string());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0]["n_seeds"], 2);
  EXPECT_DOUBLE_EQ(res[0]["metrics"]["auc"].get<double>(), auc);  // same scores, same AUC
  EXPECT_DOUBLE_EQ(res[0]["std"]["auc"].get<double>(), 0.0);
  fs::remove_all(d);
}

TEST(EvalCli, ClearErrors) {
  fs::path d = make_data();
  const std::string ellm = ellm::ellm_binary();
  fs::create_directories(d / "student");
  ellm::write_file_atomic((d / "student" / "config.json").string(), R"({"model_type": "ellm-two-tower"})");
  Result r = sh(ellm + " eval --model " + (d / "student").string() + " --pairs " + (d / "pairs.jsonl").string() +
                " --out " + (d / "o").string());
  EXPECT_NE(r.rc, 0);
  // A student directory without its settings and weights is refused, naming the file.
  EXPECT_NE(r.out.find("config.json"), std::string::npos) << r.out;
  std::ofstream((d / "bad.jsonl").string()) << "{\"id\":\"p0\",\"score\":0.5}\n";
  r = sh(ellm + " eval --scores " + (d / "bad.jsonl").string() + " --pairs " + (d / "pairs.jsonl").string() +
         " --out " + (d / "o").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("no scores for pair 'p1'"), std::string::npos) << r.out;
  r = sh(ellm + " eval --overlap --scores " + (d / "bad.jsonl").string() + " --pairs " + (d / "pairs.jsonl").string() +
         " --out " + (d / "o").string());
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("exactly one of"), std::string::npos) << r.out;
  fs::remove_all(d);
}

TEST(ReproduceScript, DryRunPlansEveryStage) {
  fs::path d = make_data();
  fs::create_directories(d / "in");
  fs::copy_file(d / "pairs.jsonl", d / "in" / "train.pairs.jsonl");
  fs::copy_file(d / "pairs.jsonl", d / "in" / "dev.pairs.jsonl");
  Result r = sh(std::string("FOLDS=2 SEEDS='1 2 3' bash ") + ellm::source_dir() + "/scripts/reproduce_tables.sh --dry-run --data " +
                (d / "in").string() + " --out " + (d / "out").string());
  ASSERT_EQ(r.rc, 0) << r.out;
  size_t last = 0;
  for (const char* stage : {" annotate ", " tokenizer train ", " finetune ", " teacher ", " distill ", " eval --overlap",
                            " eval aggregate "}) {
    size_t at = r.out.find(stage, last);
    ASSERT_NE(at, std::string::npos) << stage << " missing or out of order:\n" << r.out;
    last = at;
  }
  // K fold teachers, each labelling only its held-out fold; 3 seeds per student variant
  EXPECT_NE(r.out.find("--out " + (d / "out" / "finetune" / "fold-1").string()), std::string::npos);
  EXPECT_NE(r.out.find("--pairs " + (d / "out" / "data" / "fold-1.pairs.jsonl").string()), std::string::npos);
  EXPECT_NE(r.out.find("two-tower/rule-bio/seed-3"), std::string::npos);
  EXPECT_NE(r.out.find("--threshold-from"), std::string::npos);
  // the test pairs are never given to a training stage
  std::string test_pairs = (d / "out" / "data" / "test.pairs.jsonl").string();
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find(test_pairs) == std::string::npos) continue;
    EXPECT_TRUE(line.find(" eval ") != std::string::npos || line.find(" teacher --model") != std::string::npos) << line;
  }
  fs::remove_all(d);
}
