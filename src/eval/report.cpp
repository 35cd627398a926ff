#include "ellm/eval/report.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "ellm/eval/metrics.h"
#include "ellm/eval/overlap.h"
#include "ellm/io/atomic_file.h"
#include "ellm/text/cot.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"
#include "ellm/util/strings.h"

namespace ellm {

namespace fs = std::filesystem;

namespace {


// nlohmann writes NaN as null; make that explicit so that reading back is the same.
json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

// The model's continuous score for rank correlation: "score" when given, else
// the expected grade value under grade_probs (the teacher's definition).
double continuous_score(const Prediction& p, const GradeScale& scale) {
  if (!std::isnan(p.score)) return p.score;
  double s = 0;
  for (size_t g = 0; g < p.grade_probs.size(); ++g) s += p.grade_probs[g] * scale.values[g];
  return s;
}

struct Columns {  // the evaluated rows as flat vectors
  std::vector<double> score;        // binary score
  std::vector<int> y;               // 0/1
  std::vector<int> grade;           // label
  std::vector<int> pred_grade;      // argmax, or -1
  std::vector<double> gain;         // grade value
  std::vector<std::string> query;   // query id (or normalised query)
  std::vector<double> cont, teacher;
  bool probs = false, probability = false;
};

struct Sub {
  std::vector<double> s, gain, cont, teacher;
  std::vector<int> y, grade, pred;
  std::vector<std::string> q;
};

// `binary_only` (the bootstrap's inner loop) skips the columns its statistics do not read.
Sub take(const Columns& c, const std::vector<size_t>& rows, bool binary_only = false) {
  Sub t;
  t.s.reserve(rows.size());
  t.y.reserve(rows.size());
  for (size_t i : rows) {
    t.s.push_back(c.score[i]);
    t.y.push_back(c.y[i]);
    if (c.probs) t.grade.push_back(c.grade[i]), t.pred.push_back(c.pred_grade[i]);
    if (binary_only) continue;
    t.gain.push_back(c.gain[i]);
    t.q.push_back(c.query[i]);
    if (!c.teacher.empty()) t.cont.push_back(c.cont[i]), t.teacher.push_back(c.teacher[i]);
  }
  return t;
}

std::vector<std::vector<size_t>> groups_by_query(const Columns& c, const std::vector<size_t>& rows) {
  std::map<std::string, std::vector<size_t>> by;
  for (size_t i : rows) by[c.query[i]].push_back(i);
  std::vector<std::vector<size_t>> out;
  for (auto& [q, r] : by) out.push_back(std::move(r));
  return out;
}

json slice_metrics(const Columns& c, const std::vector<size_t>& rows, const GradeScale& scale, const EvalOptions& o) {
  Sub t = take(c, rows);
  const int K = scale.size();
  json m;
  m["n"] = rows.size();
  m["queries"] = groups_by_query(c, rows).size();
  m["positives"] = std::count(t.y.begin(), t.y.end(), 1);
  m["auc"] = num(roc_auc(t.s, t.y));
  m["pr_auc"] = num(pr_auc(t.s, t.y));
  BinaryCounts bc = counts_at(t.s, t.y, o.threshold);
  m["f1"] = num(bc.f1());
  m["precision"] = num(bc.precision());
  m["recall"] = num(bc.recall());
  m["accuracy"] = num(bc.accuracy());
  BestF1 best = best_f1(t.s, t.y);
  m["f1_best"] = num(best.f1);
  m["threshold_best"] = num(best.threshold);
  for (int k : o.ndcg_k) m[fmt::format("ndcg@{}", k)] = num(mean_ndcg_at(t.s, t.gain, t.q, k));
  m["ece"] = c.probability && !rows.empty() ? num(reliability(t.s, t.y, o.ece_bins).ece) : json(nullptr);
  if (c.probs) {
    GradeResults gr = grade_results(t.pred, t.grade, K);
    m["grade_accuracy"] = num(gr.accuracy);
    m["macro_f1"] = num(gr.macro_f1);
    json per = json::object();
    for (int g = 0; g < K; ++g) per[scale.labels[g]] = num(gr.f1[g]);
    m["f1_per_grade"] = per;
  }
  if (!c.teacher.empty()) m["spearman_teacher"] = num(spearman(t.cont, t.teacher));

  if (o.bootstrap > 0 && !rows.empty()) {
    const char* names[] = {"auc", "pr_auc", "f1", "accuracy", "macro_f1"};
    auto ci = bootstrap_groups(groups_by_query(c, rows), o.bootstrap, o.seed, o.level, 5,
                               [&](const std::vector<size_t>& r) {
                                 Sub b = take(c, r, true);
                                 BinaryCounts k = counts_at(b.s, b.y, o.threshold);
                                 double macro = c.probs ? grade_results(b.pred, b.grade, K).macro_f1 : kNaN;
                                 return std::vector<double>{roc_auc(b.s, b.y), pr_auc(b.s, b.y), k.f1(), k.accuracy(),
                                                            macro};
                               });
    json cis = json::object();
    for (int s = 0; s < 5; ++s) {
      if (s == 4 && !c.probs) continue;
      cis[names[s]] = std::isnan(ci[s].lo) ? json(nullptr) : json::array({ci[s].lo, ci[s].hi});
    }
    m["ci95"] = cis;
  }
  return m;
}

json teacher_cot_stats(const EvalInput& in) {
  int64_t with_cot = 0, parsed = 0;
  std::map<std::string, int64_t> reasons;
  std::map<std::string, std::array<int64_t, 3>> dims;  // total, correct, missing
  for (size_t i = 0; i < in.pairs.size(); ++i) {
    const auto& cot = in.preds[i].cot;
    if (!cot) continue;
    ++with_cot;
    Cot parsed_cot;
    try {
      parsed_cot = parse_cot(*cot, in.scale);
      ++parsed;
    } catch (const CotParseError& e) {
      reasons[e.reason()] += 1;
      continue;
    }
    for (const auto& [dim, verdict] : in.pairs[i].truth) {
      auto& d = dims[dim];
      d[0] += 1;
      auto step = std::find_if(parsed_cot.steps.begin(), parsed_cot.steps.end(),
                               [&](const CotStep& s) { return s.dimension == dim; });
      if (step == parsed_cot.steps.end()) d[2] += 1;
      else if (to_lower_ascii(verdict_name(step->verdict)) == to_lower_ascii(verdict)) d[1] += 1;
    }
  }
  if (with_cot == 0) return nullptr;
  json out = {{"pairs_with_cot", with_cot}, {"parsed", parsed},
              {"parse_rate", num(static_cast<double>(parsed) / with_cot)}, {"parse_failures", reasons}};
  if (!dims.empty()) {
    json per = json::object();
    int64_t total = 0, correct = 0;
    for (const auto& [dim, d] : dims) {
      per[dim] = {{"n", d[0]}, {"accuracy", num(static_cast<double>(d[1]) / d[0])}, {"missing", d[2]}};
      total += d[0], correct += d[1];
    }
    out["verdict_accuracy"] = num(static_cast<double>(correct) / total);
    out["verdict_accuracy_per_dimension"] = per;
  }
  return out;
}

std::string bucket_name(int64_t lo, int64_t hi) {
  if (hi < 0) return fmt::format("freq >{}", lo - 1);
  return lo == hi ? fmt::format("freq {}", lo) : fmt::format("freq {}-{}", lo, hi);
}

}  // namespace

std::string query_key(const std::string& query) { return join(overlap_words(query), " "); }

TrainingStats training_stats(const std::vector<Pair>& train) {
  TrainingStats st;
  st.pairs = static_cast<int64_t>(train.size());
  for (const auto& p : train) {
    st.query_freq[query_key(p.query)] += 1;
    for (auto& w : overlap_words(p.query)) st.vocab.insert(std::move(w));
  }
  return st;
}

std::vector<Slice> make_slices(const std::vector<Pair>& pairs, const TrainingStats* train,
                               const std::vector<int64_t>& tail_buckets) {
  std::vector<Slice> slices;
  Slice all{"all", "every evaluated pair", {}};
  for (size_t i = 0; i < pairs.size(); ++i) all.rows.push_back(i);
  slices.push_back(std::move(all));
  if (!train) return slices;
  for (size_t b = 1; b < tail_buckets.size(); ++b)
    ELLM_CHECK(tail_buckets[b] > tail_buckets[b - 1], "tail buckets must increase: {} after {}", tail_buckets[b],
               tail_buckets[b - 1]);
  ELLM_CHECK(tail_buckets.empty() || tail_buckets[0] >= 1, "tail buckets are upper bounds >= 1 (unseen is its own slice)");
  Slice tail{"longtail", "queries with a word outside the training queries' vocabulary", {}};
  Slice unseen{"unseen", "queries that do not occur in the training pairs", {}};
  std::vector<Slice> buckets;
  int64_t lo = 1;
  for (int64_t hi : tail_buckets) {
    buckets.push_back({bucket_name(lo, hi), fmt::format("queries seen {}..{} times in the training pairs", lo, hi), {}});
    lo = hi + 1;
  }
  buckets.push_back({bucket_name(lo, -1), fmt::format("queries seen more than {} times in the training pairs", lo - 1), {}});
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto words = overlap_words(pairs[i].query);
    if (std::any_of(words.begin(), words.end(), [&](const std::string& w) { return !train->vocab.count(w); }))
      tail.rows.push_back(i);
    auto it = train->query_freq.find(join(words, " "));
    int64_t f = it == train->query_freq.end() ? 0 : it->second;
    if (f == 0) {
      unseen.rows.push_back(i);
      continue;
    }
    size_t b = 0;
    while (b < tail_buckets.size() && f > tail_buckets[b]) ++b;
    buckets[b].rows.push_back(i);
  }
  slices.push_back(std::move(tail));
  slices.push_back(std::move(unseen));
  for (auto& b : buckets) slices.push_back(std::move(b));
  return slices;
}

std::string pairs_fingerprint(const std::vector<Pair>& pairs) {
  // FNV-1a over "id\tlabel\n": stable across platforms and runs.
  uint64_t h = 1469598103934665603ull;
  auto feed = [&](const std::string& s) {
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
  };
  for (const auto& p : pairs) feed(p.id + "\t" + std::to_string(p.label) + "\n");
  return fmt::format("{:016x}-{}", h, pairs.size());
}

json evaluate(const EvalInput& in, const TrainingStats* train, const EvalOptions& o) {
  const size_t n = in.pairs.size();
  ELLM_CHECK(in.preds.size() == n, "{} pairs but {} predictions", n, in.preds.size());
  ELLM_CHECK(in.teacher_scores.empty() || in.teacher_scores.size() == n, "{} pairs but {} teacher scores", n,
             in.teacher_scores.size());
  ELLM_CHECK(n > 0, "nothing to evaluate: no labelled pairs");
  ELLM_CHECK(std::isfinite(o.threshold), "threshold must be a finite number");
  const GradeScale& scale = in.scale;
  Columns c;
  const std::string kind = binary_score_kind(in.preds);
  c.probs = kind == "p_relevant";
  c.probability = true;
  for (size_t i = 0; i < n; ++i) {
    const Pair& p = in.pairs[i];
    if (p.label < 0 || p.label >= scale.size())
      fail("pair '{}': label {} is not a grade of the scale {} (unlabelled pairs cannot be evaluated)", p.id, p.label,
           json(scale.labels).dump());
    double s = binary_score(in.preds[i], scale);
    if (!std::isfinite(s)) fail("pair '{}': score is {}; scores must be finite", p.id, s);
    if (s < 0 || s > 1) c.probability = false;
    c.score.push_back(s);
    c.y.push_back(scale.positive(p.label) ? 1 : 0);
    c.grade.push_back(p.label);
    c.pred_grade.push_back(c.probs ? argmax(in.preds[i].grade_probs) : -1);
    c.gain.push_back(scale.values[p.label]);
    c.query.push_back(p.query_id.empty() ? query_key(p.query) : p.query_id);
    if (!in.teacher_scores.empty()) {
      if (!std::isfinite(in.teacher_scores[i])) fail("pair '{}': teacher score is {}", p.id, in.teacher_scores[i]);
      c.cont.push_back(continuous_score(in.preds[i], scale));
      c.teacher.push_back(in.teacher_scores[i]);
    }
  }

  json report;
  report["schema"] = kReportSchema;
  report["version"] = kReportVersion;
  report["binary_score"] = kind;
  std::vector<std::string> positive;
  for (int g = scale.positive_from; g < scale.size(); ++g) positive.push_back(scale.labels[g]);
  report["grades"] = scale.to_json();
  report["positive_grades"] = positive;
  report["options"] = {{"threshold", o.threshold}, {"bootstrap", o.bootstrap},  {"seed", o.seed},
                       {"level", o.level},         {"tail_buckets", o.tail_buckets}, {"ece_bins", o.ece_bins},
                       {"ndcg_k", o.ndcg_k},       {"bootstrap_unit", "query"}};
  report["training"] = train ? json{{"pairs", train->pairs}, {"queries", train->query_freq.size()},
                                    {"vocabulary", train->vocab.size()}}
                             : json(nullptr);
  auto slices = make_slices(in.pairs, train, o.tail_buckets);
  report["overall"] = slice_metrics(c, slices[0].rows, scale, o);
  json sl = json::array();
  for (size_t s = 1; s < slices.size(); ++s) {
    json m = slice_metrics(c, slices[s].rows, scale, o);
    m["name"] = slices[s].name;
    m["description"] = slices[s].description;
    sl.push_back(m);
  }
  report["slices"] = sl;

  json grades = json::array();
  for (int g = 0; g < scale.size(); ++g) {
    int64_t count = 0, correct = 0, recalled = 0;
    double sum = 0;
    for (size_t i = 0; i < n; ++i) {
      if (c.grade[i] != g) continue;
      ++count;
      sum += c.score[i];
      correct += (c.score[i] >= o.threshold) == (c.y[i] == 1);
      recalled += c.pred_grade[i] == g;
    }
    json row = {{"grade", scale.labels[g]},
                {"positive", scale.positive(g)},
                {"n", count},
                {"mean_score", count ? num(sum / count) : json(nullptr)},
                {"binary_accuracy", count ? num(static_cast<double>(correct) / count) : json(nullptr)}};
    if (c.probs) row["grade_recall"] = count ? num(static_cast<double>(recalled) / count) : json(nullptr);
    grades.push_back(row);
  }
  report["per_grade"] = grades;

  if (c.probability) {
    Reliability rel = reliability(c.score, c.y, o.ece_bins);
    json bins = json::array();
    for (const auto& b : rel.bins)
      bins.push_back({{"lo", b.lo}, {"hi", b.hi}, {"count", b.count}, {"mean_confidence", num(b.mean_confidence)},
                      {"positive_rate", num(b.positive_rate)}});
    report["reliability"] = bins;
  } else {
    report["reliability"] = nullptr;
  }
  json cot = teacher_cot_stats(in);
  if (!cot.is_null()) report["teacher_cot"] = cot;
  return report;
}

namespace {

std::string pct(const json& v) {
  if (!v.is_number()) return "–";
  return fmt::format("{:.1f}", 100.0 * v.get<double>());
}
std::string plain(const json& v, int digits = 3) {
  if (!v.is_number()) return "–";
  return fmt::format("{:.{}f}", v.get<double>(), digits);
}
std::string with_ci(const json& m, const std::string& key) {
  std::string s = pct(m.value(key, json(nullptr)));
  if (m.contains("ci95") && m["ci95"].contains(key) && m["ci95"][key].is_array())
    s += fmt::format(" [{}, {}]", pct(m["ci95"][key][0]), pct(m["ci95"][key][1]));
  return s;
}

}  // namespace

std::string report_markdown(const json& r) {
  std::ostringstream md;
  md << "# Evaluation report\n\n";
  if (r.contains("source")) md << "- source: `" << r["source"].dump() << "`\n";
  if (r.contains("data")) md << "- data: `" << r["data"].dump() << "`\n";
  if (r.contains("meta") && !r["meta"].empty()) md << "- meta: `" << r["meta"].dump() << "`\n";
  const json& opt = r["options"];
  md << fmt::format("- binary relevance: grades {} are positive; ranked by {}\n", r["positive_grades"].dump(),
                    r["binary_score"].get<std::string>());
  md << fmt::format("- threshold {} (fixed); 95% CIs: {} bootstrap replicates over queries, seed {}\n\n",
                    plain(opt["threshold"]), opt["bootstrap"].get<int>(), opt["seed"].get<uint64_t>());
  md << "Metrics in %, except thresholds and ECE.\n\n";

  std::vector<std::pair<std::string, const json*>> rows = {{"all", &r["overall"]}};
  for (const auto& s : r["slices"]) rows.emplace_back(s["name"].get<std::string>(), &s);
  md << "| slice | pairs | queries | positives | AUC [95% CI] | PR-AUC | F1 [95% CI] | accuracy | F1 best (thr) | "
        "NDCG@10 | ECE |\n|---|---:|---:|---:|---|---:|---|---:|---|---:|---:|\n";
  for (const auto& [name, m] : rows) {
    md << fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} ({}) | {} | {} |\n", name, (*m)["n"].dump(),
                      (*m)["queries"].dump(), (*m)["positives"].dump(), with_ci(*m, "auc"), pct((*m)["pr_auc"]),
                      with_ci(*m, "f1"), pct((*m)["accuracy"]), pct((*m)["f1_best"]), plain((*m)["threshold_best"]),
                      pct(m->value("ndcg@10", json(nullptr))), plain((*m)["ece"]));
  }
  const json& all = r["overall"];
  if (all.contains("macro_f1")) {
    md << "\n## Grades\n\n";
    md << fmt::format("Grade accuracy {} · macro-F1 {}\n\n", pct(all["grade_accuracy"]), with_ci(all, "macro_f1"));
  } else {
    md << "\n## Grades\n\n";
  }
  md << "| grade | positive | pairs | mean score | binary accuracy | F1 | recall |\n|---|---|---:|---:|---:|---:|---:|\n";
  for (const auto& g : r["per_grade"]) {
    std::string label = g["grade"].get<std::string>();
    json f1 = all.contains("f1_per_grade") ? all["f1_per_grade"].value(label, json(nullptr)) : json(nullptr);
    md << fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", label, g["positive"].get<bool>() ? "yes" : "no",
                      g["n"].dump(), plain(g["mean_score"]), pct(g["binary_accuracy"]), pct(f1),
                      pct(g.value("grade_recall", json(nullptr))));
  }
  if (all.contains("spearman_teacher"))
    md << fmt::format("\nSpearman with the teacher's score: {}\n", plain(all["spearman_teacher"]));
  if (r.contains("teacher_cot")) {
    const json& t = r["teacher_cot"];
    md << fmt::format("\n## Teacher CoT\n\nParsed {} of {} CoTs ({}%); failures by reason: {}\n",
                      t["parsed"].dump(), t["pairs_with_cot"].dump(), pct(t["parse_rate"]), t["parse_failures"].dump());
    if (t.contains("verdict_accuracy_per_dimension")) {
      md << fmt::format("\nVerdict accuracy against the ground truth: {}%\n\n| dimension | n | accuracy | missing |\n"
                        "|---|---:|---:|---:|\n",
                        pct(t["verdict_accuracy"]));
      for (auto it = t["verdict_accuracy_per_dimension"].begin(); it != t["verdict_accuracy_per_dimension"].end(); ++it)
        md << fmt::format("| {} | {} | {} | {} |\n", it.key(), it.value()["n"].dump(), pct(it.value()["accuracy"]),
                          it.value()["missing"].dump());
    }
  }
  if (r.contains("plots") && !r["plots"].empty()) {
    md << "\n## Plots\n\n";
    for (const auto& p : r["plots"]) md << fmt::format("![{0}]({0})\n", p.get<std::string>());
  }
  return md.str();
}

std::string find_gnuplot() {
  const char* path = std::getenv("PATH");
  if (!path) return "";
  for (const auto& dir : split(path, ':')) {
    if (dir.empty()) continue;
    fs::path p = fs::path(dir) / "gnuplot";
    std::error_code ec;
    if (fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "";
}

void write_report(const std::string& dir, const json& report_in, const EvalInput& in, const std::string& plot_format) {
  ELLM_CHECK(plot_format == "svg" || plot_format == "png" || plot_format == "none",
             "plot format must be svg, png or none, got '{}'", plot_format);
  ensure_dir(dir);
  json report = report_in;
  report["plots"] = json::array();
  const fs::path plots = fs::path(dir) / "plots";
  ensure_dir(plots.string());

  std::vector<double> s;
  std::vector<int> y;
  for (size_t i = 0; i < in.pairs.size(); ++i) {
    s.push_back(binary_score(in.preds[i], in.scale));
    y.push_back(in.scale.positive(in.pairs[i].label) ? 1 : 0);
  }
  auto write_tsv = [&](const std::string& name, const std::string& header, const std::vector<CurvePoint>& pts) {
    std::string text = header + "\n";
    for (const auto& p : pts) text += fmt::format("{:.6g}\t{:.6g}\t{:.6g}\n", p.x, p.y, p.threshold);
    write_file_atomic((plots / name).string(), text);
  };
  write_tsv("roc.tsv", "# fpr\ttpr\tthreshold", roc_curve(s, y));
  write_tsv("pr.tsv", "# recall\tprecision\tthreshold", pr_curve(s, y));
  const bool have_reliability = report["reliability"].is_array();
  if (have_reliability) {
    std::string text = "# lo\thi\tcount\tmean_confidence\tpositive_rate\n";
    for (const auto& b : report["reliability"])
      if (b["count"].get<int64_t>() > 0)
        text += fmt::format("{}\t{}\t{}\t{:.6g}\t{:.6g}\n", b["lo"].get<double>(), b["hi"].get<double>(),
                            b["count"].get<int64_t>(), b["mean_confidence"].get<double>(),
                            b["positive_rate"].get<double>());
    write_file_atomic((plots / "reliability.tsv").string(), text);
  }

  if (plot_format != "none") {
    const std::string gnuplot = find_gnuplot();
    if (gnuplot.empty()) {
      spdlog::warn("gnuplot not found on PATH: plots skipped (data in {}; install gnuplot-nox)", plots.string());
    } else {
      const std::string term = plot_format == "svg" ? "svg size 560,480 dynamic background '#ffffff'"
                                                    : "pngcairo size 560,480";
      const std::string auc = pct(report["overall"]["auc"]), ap = pct(report["overall"]["pr_auc"]);
      struct Plot {
        std::string name, body;
      };
      std::vector<Plot> todo = {
          {"roc", fmt::format("set title 'ROC (AUC {})'\nset xlabel 'false positive rate'\nset ylabel 'true positive "
                              "rate'\nset xrange [0:1]\nset yrange [0:1]\nset key bottom right\n"
                              "plot 'roc.tsv' using 1:2 with lines lw 2 title 'model', x with lines dt 2 lc 'grey' "
                              "title 'chance'\n",
                              auc)},
          {"pr", fmt::format("set title 'Precision-recall (AP {})'\nset xlabel 'recall'\nset ylabel 'precision'\n"
                             "set xrange [0:1]\nset yrange [0:1]\nset key bottom left\n"
                             "plot 'pr.tsv' using 1:2 with steps lw 2 title 'model'\n",
                             ap)}};
      if (have_reliability)
        todo.push_back({"reliability", fmt::format("set title 'Reliability (ECE {})'\nset xlabel 'predicted "
                                                   "probability of relevance'\nset ylabel 'fraction relevant'\n"
                                                   "set xrange [0:1]\nset yrange [0:1]\nset key top left\n"
                                                   "plot 'reliability.tsv' using 4:5 with linespoints lw 2 pt 7 "
                                                   "title 'model', x with lines dt 2 lc 'grey' title 'perfect'\n",
                                                   plain(report["overall"]["ece"]))});
      for (const auto& p : todo) {
        const std::string out = p.name + "." + plot_format;
        write_file_atomic((plots / (p.name + ".gp")).string(),
                          fmt::format("set terminal {}\nset output '{}'\nset grid\n{}", term, out, p.body));
        // gnuplot resolves data files relative to its working directory.
        std::string cmd = fmt::format("cd '{}' && '{}' '{}.gp' 2>&1", plots.string(), gnuplot, p.name);
        std::string output;
        if (FILE* pipe = popen(cmd.c_str(), "r")) {
          char buf[512];
          while (fgets(buf, sizeof buf, pipe)) output += buf;
          int rc = pclose(pipe);
          if (rc == 0 && fs::exists(plots / out)) {
            report["plots"].push_back("plots/" + out);
            continue;
          }
        }
        spdlog::warn("gnuplot could not draw {}: {}", (plots / out).string(), trim(output));
      }
    }
  }
  write_file_atomic((fs::path(dir) / "report.json").string(), report.dump(2) + "\n");
  write_file_atomic((fs::path(dir) / "report.md").string(), report_markdown(report));
}

}  // namespace ellm
