#include "ellm/eval/aggregate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <set>
#include <sstream>

#include "ellm/eval/metrics.h"
#include "ellm/eval/report.h"
#include "ellm/io/atomic_file.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace ellm {

namespace fs = std::filesystem;

namespace {


double number_or_nan(const json& j, const std::string& key) {
  if (!j.is_object() || !j.contains(key) || !j[key].is_number()) return kNaN;
  return j[key].get<double>();
}

int rank_of(const std::vector<std::string>& order, const std::string& name) {
  auto it = std::find(order.begin(), order.end(), name);
  return it == order.end() ? static_cast<int>(order.size()) : static_cast<int>(it - order.begin());
}

// Seeds sort numerically when they are numbers.
bool seed_less(const std::string& a, const std::string& b) {
  char* ea = nullptr;
  char* eb = nullptr;
  double da = std::strtod(a.c_str(), &ea), db = std::strtod(b.c_str(), &eb);
  bool na = !a.empty() && *ea == '\0', nb = !b.empty() && *eb == '\0';
  if (na && nb && da != db) return da < db;
  return a < b;
}

}  // namespace

const std::vector<std::string>& aggregate_metric_names() {
  static const std::vector<std::string> names = {"auc", "pr_auc", "f1", "accuracy", "longtail_auc", "ndcg@10", "ece"};
  return names;
}

RunMetrics read_run(const std::string& path) {
  json r = read_json_file(path);
  if (r.value("schema", "") != kReportSchema)
    fail("{}: not an ellm eval report (schema '{}', expected '{}')", path, r.value("schema", ""), kReportSchema);
  if (r.value("version", 0) != kReportVersion)
    fail("{}: report version {} but this build reads version {}", path, r.value("version", 0), kReportVersion);
  RunMetrics run;
  run.path = path;
  const json meta = r.value("meta", json::object());
  if (!meta.contains("model") || !meta.contains("variant"))
    fail("{}: meta has no 'model' and 'variant' (run ellm eval with --meta model=... --meta variant=...)", path);
  auto text = [](const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); };
  run.model = text(meta["model"]);
  run.variant = text(meta["variant"]);
  run.seed = meta.contains("seed") ? text(meta["seed"]) : "";
  if (!r.contains("data") || !r["data"].contains("fingerprint"))
    fail("{}: report has no data.fingerprint", path);
  run.fingerprint = r["data"]["fingerprint"].get<std::string>();
  const json& all = r.at("overall");
  for (const char* k : {"auc", "pr_auc", "f1", "accuracy", "ndcg@10", "ece"}) run.metrics[k] = number_or_nan(all, k);
  json tail;
  for (const auto& s : r.value("slices", json::array()))
    if (s.value("name", "") == "longtail") tail = s;
  run.metrics["longtail_auc"] = number_or_nan(tail, "auc");
  auto ci = [&](const json& m, const std::string& key, const std::string& as) {
    if (m.is_object() && m.contains("ci95") && m["ci95"].contains(key) && m["ci95"][key].is_array())
      run.ci95[as] = {m["ci95"][key][0].get<double>(), m["ci95"][key][1].get<double>()};
  };
  for (const char* k : {"auc", "pr_auc", "f1", "accuracy"}) ci(all, k, k);
  ci(tail, "auc", "longtail_auc");
  return run;
}

std::vector<std::string> find_reports(const std::vector<std::string>& paths) {
  std::set<std::string> found;
  for (const auto& p : paths) {
    if (fs::is_regular_file(p)) {
      found.insert(p);
    } else if (fs::is_directory(p)) {
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file() && e.path().filename() == "report.json") found.insert(e.path().string());
    } else {
      fail("--reports {}: no such file or directory", p);
    }
  }
  if (found.empty()) fail("no report.json found under {}", json(paths).dump());
  return {found.begin(), found.end()};
}

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd out;
  double sum = 0;
  for (double v : values)
    if (!std::isnan(v)) sum += v, ++out.n;
  if (out.n == 0) return {kNaN, kNaN, 0};
  out.mean = sum / out.n;
  if (out.n < 2) {
    out.std = kNaN;
    return out;
  }
  double ss = 0;
  for (double v : values)
    if (!std::isnan(v)) ss += (v - out.mean) * (v - out.mean);
  out.std = std::sqrt(ss / (out.n - 1));
  return out;
}

Aggregate aggregate_reports(const std::vector<std::string>& files, const std::string& baseline) {
  Aggregate agg;
  agg.baseline = baseline;
  std::map<std::pair<std::string, std::string>, AggregateRow> rows;
  std::string first_path;
  for (const auto& f : files) {
    RunMetrics run = read_run(f);
    if (agg.fingerprint.empty()) agg.fingerprint = run.fingerprint, first_path = f;
    if (run.fingerprint != agg.fingerprint)
      fail("{} was computed on other pairs than {} (fingerprints {} vs {}): results must share one evaluation set", f,
           first_path, run.fingerprint, agg.fingerprint);
    auto& row = rows[{run.model, run.variant}];
    row.model = run.model;
    row.variant = run.variant;
    for (const auto& other : row.runs)
      if (other.seed == run.seed)
        fail("{} and {} are both {} / {} seed '{}'", other.path, f, run.model, run.variant, run.seed);
    row.runs.push_back(std::move(run));
  }
  for (auto& [key, row] : rows) {
    std::sort(row.runs.begin(), row.runs.end(), [](const RunMetrics& a, const RunMetrics& b) { return seed_less(a.seed, b.seed); });
    for (const auto& m : aggregate_metric_names()) {
      std::vector<double> v;
      for (const auto& r : row.runs) v.push_back(r.metrics.at(m));
      row.metrics[m] = mean_std(v);
      std::vector<double> lo, hi;
      for (const auto& r : row.runs)
        if (r.ci95.count(m)) lo.push_back(r.ci95.at(m).first), hi.push_back(r.ci95.at(m).second);
      if (!lo.empty()) row.ci95[m] = {mean_std(lo).mean, mean_std(hi).mean};
    }
  }
  for (auto& [key, row] : rows) {
    if (row.variant == baseline) continue;
    auto base = rows.find({row.model, baseline});
    if (base == rows.end()) continue;
    for (const auto& m : aggregate_metric_names()) {
      std::vector<double> d;
      for (const auto& r : row.runs)
        for (const auto& b : base->second.runs)
          if (b.seed == r.seed) d.push_back(r.metrics.at(m) - b.metrics.at(m));
      MeanStd ms = mean_std(d);
      if (ms.n > 0) row.delta[m] = ms;
    }
  }
  static const std::vector<std::string> model_order = {"teacher", "overlap", "cross-encoder", "two-tower"};
  static const std::vector<std::string> variant_order = {"cot", "no-cot", "rule", "ce",
                                                         "score-kd", "cot-kd", "rule-bio", "mkd"};
  for (auto& [key, row] : rows) agg.rows.push_back(std::move(row));
  std::stable_sort(agg.rows.begin(), agg.rows.end(), [](const AggregateRow& a, const AggregateRow& b) {
    auto ka = std::make_tuple(rank_of(model_order, a.model), a.model, rank_of(variant_order, a.variant), a.variant);
    auto kb = std::make_tuple(rank_of(model_order, b.model), b.model, rank_of(variant_order, b.variant), b.variant);
    return ka < kb;
  });
  return agg;
}

json results_json(const Aggregate& agg) {
  auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
  json out = json::array();
  for (const auto& row : agg.rows) {
    json e;
    e["model"] = row.model;
    e["variant"] = row.variant;
    json seeds = json::array(), reports = json::array();
    for (const auto& r : row.runs) {
      seeds.push_back(r.seed);
      reports.push_back(r.path);
    }
    e["seeds"] = seeds;
    e["n_seeds"] = row.runs.size();
    json metrics = json::object(), stds = json::object(), ci = json::object();
    for (const auto& m : aggregate_metric_names()) {
      metrics[m] = num(row.metrics.at(m).mean);
      stds[m] = num(row.metrics.at(m).std);
      if (row.ci95.count(m)) ci[m] = {row.ci95.at(m).first, row.ci95.at(m).second};
    }
    e["metrics"] = metrics;
    e["std"] = stds;
    e["ci95"] = ci;
    if (!row.delta.empty()) {
      json d = json::object();
      for (const auto& [m, ms] : row.delta) d[m] = {{"mean", num(ms.mean)}, {"std", num(ms.std)}, {"n", ms.n}};
      e["delta_vs_" + agg.baseline] = d;
    }
    e["reports"] = reports;
    out.push_back(e);
  }
  return out;
}

std::string results_markdown(const Aggregate& agg) {
  auto pct = [](const MeanStd& m) {
    if (m.n == 0 || std::isnan(m.mean)) return std::string("–");
    if (std::isnan(m.std)) return fmt::format("{:.1f}", 100 * m.mean);
    return fmt::format("{:.1f} ± {:.1f}", 100 * m.mean, 100 * m.std);
  };
  auto with_ci = [&](const AggregateRow& r, const std::string& m) {
    std::string s = pct(r.metrics.at(m));
    if (r.ci95.count(m)) s += fmt::format(" [{:.1f}, {:.1f}]", 100 * r.ci95.at(m).first, 100 * r.ci95.at(m).second);
    return s;
  };
  auto delta = [&](const AggregateRow& r, const std::string& m) {
    auto it = r.delta.find(m);
    if (it == r.delta.end()) return std::string("–");
    const MeanStd& d = it->second;
    if (std::isnan(d.mean)) return std::string("–");
    if (std::isnan(d.std)) return fmt::format("{:+.1f}", 100 * d.mean);
    return fmt::format("{:+.1f} ± {:.1f}", 100 * d.mean, 100 * d.std);
  };
  std::ostringstream md;
  md << fmt::format("Metrics in %: mean ± std over seeds [mean of the per-seed bootstrap 95% CIs over queries]; "
                    "Δ = paired difference against `{}` on the same seeds. Evaluation set {}.\n\n",
                    agg.baseline, agg.fingerprint);
  md << fmt::format("| model | variant | seeds | AUC | F1 | accuracy | long-tail AUC | PR-AUC | NDCG@10 | Δ AUC vs {0} | "
                    "Δ long-tail AUC vs {0} |\n|---|---|---:|---|---|---|---|---|---|---|---|\n",
                    agg.baseline);
  for (const auto& r : agg.rows)
    md << fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", r.model, r.variant, r.runs.size(),
                      with_ci(r, "auc"), with_ci(r, "f1"), with_ci(r, "accuracy"), with_ci(r, "longtail_auc"),
                      pct(r.metrics.at("pr_auc")), pct(r.metrics.at("ndcg@10")), delta(r, "auc"),
                      delta(r, "longtail_auc"));
  return md.str();
}

void write_aggregate(const std::string& dir, const Aggregate& agg) {
  ensure_dir(dir);
  write_file_atomic((fs::path(dir) / "results.json").string(), results_json(agg).dump(2) + "\n");
  write_file_atomic((fs::path(dir) / "results.md").string(), results_markdown(agg));
}

}  // namespace ellm
