// ellm eval: score a model (or a scores file, or the lexical-overlap rule) on
// labelled pairs and write report.json / report.md / plots; `ellm eval
// aggregate` turns many reports (variants × seeds) into the results table.
#include <cmath>
#include <iostream>

#include "commands.h"
#include "ellm/eval/aggregate.h"
#include "ellm/eval/predictions.h"
#include "ellm/eval/report.h"
#include "ellm/io/atomic_file.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"
#include "ellm/util/strings.h"

namespace ellm::cli {

namespace {

struct EvalArgs {
  std::string scores, model, pairs, split, out, train_pairs, train_split = "train", teacher, plots = "svg";
  std::string threshold_from;  // a dev report.json whose overall.threshold_best becomes --threshold
  bool overlap = false;
  int bootstrap = 1000;
  uint64_t seed = 0;
  double threshold = 0.5;
  std::vector<int64_t> tail_buckets{1, 5, 20};
  int ece_bins = 10;
  int positive_from = 0;  // 0 = the dataset's
  int64_t batch = 64;
  std::string dtype = "fp32";
  std::vector<std::string> meta;
};

json parse_meta(const std::vector<std::string>& items) {
  json meta = json::object();
  for (const auto& kv : items) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) fail("--meta '{}': expected KEY=VALUE", kv);
    std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    // Numbers stay numbers (seed=3), everything else is a string.
    json parsed = json::parse(value, nullptr, false);
    meta[key] = !parsed.is_discarded() && parsed.is_number() ? parsed : json(value);
  }
  return meta;
}

void run_eval(const EvalArgs& a) {
  int sources = !a.scores.empty() + !a.model.empty() + a.overlap;
  if (sources != 1) fail("ellm eval: give exactly one of --scores FILE, --model DIR, --overlap");
  if (a.pairs.empty()) fail("ellm eval: --pairs FILE is required");
  if (a.out.empty()) fail("ellm eval: --out DIR is required");

  GradeScale scale = grade_scale_for(a.pairs);
  if (a.positive_from > 0) {
    if (a.positive_from >= scale.size())
      fail("--positive-from {}: the scale has grades 0..{} ({})", a.positive_from, scale.size() - 1,
           json(scale.labels).dump());
    scale.positive_from = a.positive_from;
  }
  std::vector<Pair> all = read_pairs(a.pairs, a.split);
  std::vector<Pair> pairs;
  int64_t unlabelled = 0;
  for (auto& p : all) (p.label >= 0 ? pairs.push_back(std::move(p)) : void(++unlabelled));
  if (unlabelled) spdlog::warn("{}: {} unlabelled pairs left out", a.pairs, unlabelled);
  if (pairs.empty())
    fail("{}: no labelled pairs{}", a.pairs, a.split.empty() ? "" : fmt::format(" in split '{}'", a.split));

  PredictionSource source;
  if (!a.scores.empty()) source = {PredictionSource::Kind::scores, a.scores, a.batch};
  else if (!a.model.empty()) source = {PredictionSource::Kind::model, a.model, a.batch, a.dtype};
  else source = {PredictionSource::Kind::overlap, "", a.batch};
  json source_info;
  EvalInput input;
  input.preds = load_predictions(source, pairs, scale, &source_info);
  input.scale = scale;
  if (!a.teacher.empty()) {
    auto t = read_scores_file(a.teacher, pairs, scale);
    for (const auto& p : t) {
      double s = p.score;
      if (std::isnan(s)) {
        s = 0;
        for (size_t g = 0; g < p.grade_probs.size(); ++g) s += p.grade_probs[g] * scale.values[g];
      }
      input.teacher_scores.push_back(s);
    }
  }

  TrainingStats train;
  bool have_train = !a.train_pairs.empty();
  if (have_train) {
    auto tp = read_pairs(a.train_pairs, a.train_split);
    if (tp.empty())
      fail("{}: no pairs in split '{}' (pass --train-split '' to use every pair of the file)", a.train_pairs,
           a.train_split);
    train = training_stats(tp);
  }

  EvalOptions opt;
  opt.threshold = a.threshold;
  if (!a.threshold_from.empty()) {
    json dev = read_json_file(a.threshold_from);
    if (dev.value("schema", "") != kReportSchema) fail("{}: not an ellm eval report", a.threshold_from);
    const json& t = dev.at("overall").at("threshold_best");
    if (!t.is_number()) fail("{}: overall.threshold_best is undefined (no positives on that split?)", a.threshold_from);
    opt.threshold = t.get<double>();
    spdlog::info("threshold {} (best F1 on {})", opt.threshold, a.threshold_from);
  }
  opt.bootstrap = a.bootstrap;
  opt.seed = a.seed;
  opt.tail_buckets = a.tail_buckets;
  opt.ece_bins = a.ece_bins;
  input.pairs = std::move(pairs);
  json report = evaluate(input, have_train ? &train : nullptr, opt);
  report["source"] = source_info;
  report["data"] = {{"pairs", a.pairs},
                    {"split", a.split},
                    {"n", input.pairs.size()},
                    {"fingerprint", pairs_fingerprint(input.pairs)},
                    {"train_pairs", have_train ? json(a.train_pairs) : json(nullptr)},
                    {"train_split", have_train ? json(a.train_split) : json(nullptr)},
                    {"teacher", a.teacher.empty() ? json(nullptr) : json(a.teacher)}};
  report["meta"] = parse_meta(a.meta);
  if (!a.threshold_from.empty()) report["options"]["threshold_from"] = a.threshold_from;
  ensure_dir(a.out);
  if (source.kind != PredictionSource::Kind::scores)
    write_scores_file(a.out + "/scores.jsonl", input.pairs, input.preds);
  write_report(a.out, report, input, a.plots);
  const json& m = report["overall"];
  auto show = [](const json& v) { return v.is_number() ? fmt::format("{:.4f}", v.get<double>()) : std::string("null"); };
  std::cout << fmt::format("pairs {}  AUC {}  PR-AUC {}  F1 {}  accuracy {}  NDCG@10 {}\n", m["n"].dump(),
                           show(m["auc"]), show(m["pr_auc"]), show(m["f1"]), show(m["accuracy"]),
                           show(m.value("ndcg@10", json(nullptr))));
  spdlog::info("wrote {}/report.json and report.md", a.out);
}

}  // namespace

void add_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "eval", "metrics of a model, a scores file or the lexical-overlap rule on labelled pairs → report.json/.md");
  static EvalArgs a;
  cmd->add_option("--scores", a.scores, "JSONL with id and grade_probs and/or score (e.g. teacher.jsonl)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--model", a.model, "model directory (config.json model_type picks the scorer)")
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--overlap", a.overlap, "score with the lexical-overlap control rule (no model)");
  cmd->add_option("--pairs", a.pairs, "labelled pairs.jsonl (grade scale from dataset.json beside it)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--split", a.split, "evaluate only this split of --pairs (default: every pair)");
  cmd->add_option("--out", a.out, "output directory");
  cmd->add_option("--train-pairs", a.train_pairs, "training pairs: define the long-tail, unseen and frequency slices")
      ->check(CLI::ExistingFile);
  cmd->add_option("--train-split", a.train_split, "split of --train-pairs to count ('' = all)")->capture_default_str();
  cmd->add_option("--teacher", a.teacher, "teacher.jsonl: adds Spearman correlation with the teacher's score")
      ->check(CLI::ExistingFile);
  cmd->add_option("--threshold", a.threshold, "fixed operating threshold on the binary score (choose it on dev)")
      ->capture_default_str();
  cmd->add_option("--threshold-from", a.threshold_from,
                  "take the threshold from a report.json (its overall.threshold_best, e.g. the dev report)")
      ->check(CLI::ExistingFile)
      ->excludes("--threshold");
  cmd->add_option("--bootstrap", a.bootstrap, "bootstrap replicates over queries for 95% CIs (0 = none)")
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "bootstrap seed")->capture_default_str();
  cmd->add_option("--tail-buckets", a.tail_buckets, "upper bounds of the training-frequency buckets")
      ->delimiter(',')
      ->capture_default_str();
  cmd->add_option("--ece-bins", a.ece_bins, "bins of the reliability diagram / ECE")->capture_default_str();
  cmd->add_option("--positive-from", a.positive_from, "override the dataset's first relevant grade (e.g. 2 = exact vs rest)");
  cmd->add_option("--plots", a.plots, "svg | png | none")->capture_default_str();
  cmd->add_option("--batch", a.batch, "batch size when scoring a model")->capture_default_str();
  cmd->add_option("--dtype", a.dtype, "compute dtype when scoring a student: fp32 | bf16")->capture_default_str();
  cmd->add_option("--meta", a.meta, "KEY=VALUE stored in report.json meta (model=, variant=, seed= for aggregate)")
      ->allow_extra_args(false);

  auto* agg = cmd->add_subcommand("aggregate", "combine report.json files (variants × seeds) into results.json/.md");
  static std::vector<std::string> reports;
  static std::string agg_out, metric_for_delta = "ce";
  agg->add_option("--reports", reports, "report.json files or directories searched for them")->required();
  agg->add_option("--out", agg_out, "output directory for results.json and results.md")->required();
  agg->add_option("--baseline", metric_for_delta, "variant that paired deltas are taken against")->capture_default_str();
  agg->callback([] {
    auto files = find_reports(reports);
    Aggregate result = aggregate_reports(files, metric_for_delta);
    write_aggregate(agg_out, result);
    std::cout << results_markdown(result);
  });
  cmd->callback([cmd, agg] {
    if (agg->parsed()) return;
    run_eval(a);
  });
}

}  // namespace ellm::cli
