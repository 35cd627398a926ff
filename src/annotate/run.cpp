#include "ellm/annotate/run.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "ellm/annotate/annotator.h"
#include "ellm/annotate/consistency.h"
#include "ellm/annotate/openai.h"
#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/text/cot.h"
#include "ellm/text/item_text.h"
#include "ellm/util/error.h"

namespace ellm {

json annotate_default_config() {
  return {{"_comment", "ellm annotate: see include/ellm/annotate/run.h and docs/annotate.md"},
          {"annotators", json::array({"attribute"})},
          {"policy", "all-agree"},
          {"keep_disagreeing", false},
          {"split", ""},
          {"limit", 0},
          {"lexicon", "configs/lexicons/attributes.json"},
          {"openai", openai_default_options()}};
}

json run_annotate(const std::string& pairs_path, const std::string& out_dir, const json& config) {
  const Policy policy = parse_policy(config.at("policy").get<std::string>());
  const bool keep_disagreeing = config.at("keep_disagreeing").get<bool>();
  const std::string split = config.at("split").get<std::string>();
  const int64_t limit = config.at("limit").get<int64_t>();
  const auto specs = config.at("annotators").get<std::vector<std::string>>();
  if (specs.empty()) fail("annotate: no annotator given (--annotator attribute | file:PATH | openai:URL)");

  GradeScale grades = grade_scale_for(pairs_path);
  std::vector<Pair> all = read_pairs(pairs_path);
  std::vector<Pair> pairs;
  for (const auto& p : all) {
    if (!split.empty() && p.split != split) continue;
    if (limit > 0 && static_cast<int64_t>(pairs.size()) >= limit) break;
    if (p.label >= grades.size()) fail("{}: pair {} has label {} outside the {} grades", pairs_path, p.id, p.label, grades.size());
    pairs.push_back(p);
  }
  if (pairs.empty()) fail("{}: no pairs{}", pairs_path, split.empty() ? "" : " in split '" + split + "'");
  ensure_dir(out_dir);

  AnnotatorContext ctx;
  ctx.grades = grades;
  ctx.catalogue = std::move(all);
  ctx.lexicon = config.at("lexicon").get<std::string>();
  ctx.cache_dir = (std::filesystem::path(out_dir) / "cache").string();
  ctx.openai = config.at("openai");
  std::vector<std::unique_ptr<Annotator>> annotators;
  for (const auto& s : specs) annotators.push_back(make_annotator(s, ctx));
  ctx.catalogue.clear();
  ctx.catalogue.shrink_to_fit();

  // Ask every annotator, then parse its answers.
  const size_t A = annotators.size(), N = pairs.size();
  std::vector<std::vector<AnnotatorVote>> votes(N, std::vector<AnnotatorVote>(A));
  for (size_t a = 0; a < A; ++a) {
    spdlog::info("annotate: {} on {} pairs", annotators[a]->name(), N);
    auto answers = annotators[a]->annotate(pairs);
    ELLM_CHECK(answers.size() == N, "annotator {} returned {} answers for {} pairs", annotators[a]->name(), answers.size(), N);
    for (size_t i = 0; i < N; ++i) votes[i][a] = parse_answer(answers[i], grades);
  }

  // Decide and write.
  struct PerAnnotator {
    int64_t answered = 0, failed = 0, samples = 0, parsed = 0;
    std::map<std::string, int64_t> parse_failures;
    std::vector<int64_t> votes;
    std::vector<int> human, vote;  // pairs with both
    TruthAgreement truth;
  };
  std::vector<PerAnnotator> per(A);
  for (auto& p : per) p.votes.assign(grades.size(), 0);
  std::map<std::string, int64_t> dropped;
  std::vector<int64_t> kept_by_grade(grades.size(), 0);
  int64_t kept = 0, flagged = 0, failed = 0, unlocated = 0, terms = 0;
  bool any_truth = false;
  TruthAgreement kept_truth;
  std::string ann_path = (std::filesystem::path(out_dir) / "annotations.jsonl").string();
  JsonlWriter writer(ann_path);
  for (size_t i = 0; i < N; ++i) {
    const Pair& p = pairs[i];
    any_truth |= !p.truth.empty();
    for (size_t a = 0; a < A; ++a) {
      const auto& v = votes[i][a];
      auto& s = per[a];
      if (v.failed) ++s.failed;
      else ++s.answered;
      for (const auto& smp : v.samples) {
        ++s.samples;
        if (smp.parsed) ++s.parsed;
        else ++s.parse_failures[smp.error];
      }
      if (v.grade >= 0) {
        ++s.votes[v.grade];
        if (p.label >= 0) {
          s.human.push_back(p.label);
          s.vote.push_back(v.grade);
        }
        if (!p.truth.empty())
          for (const auto& smp : v.samples)
            if (smp.parsed) {
              s.truth.add(smp.cot, p.truth);
              break;
            }
      }
    }
    Decision d = decide(votes[i], p.label, policy, keep_disagreeing);
    if (!d.keep) {
      ++dropped[d.drop_reason];
      if (d.drop_reason == "failed") ++failed;
      continue;
    }
    ++kept;
    ++kept_by_grade[d.grade];
    Cot cot = votes[i][d.annotator].samples[d.sample].cot;
    locate_terms(cot, p.query, item_text(p.item));
    unlocated += unlocated_terms(cot);
    for (const auto& st : cot.steps) terms += !st.query_term.empty() + !st.item_term.empty();
    if (!p.truth.empty()) kept_truth.add(cot, p.truth);
    json rec = pair_to_json(p);
    json cj = cot_to_json(cot);
    cj["text"] = write_cot(cot);
    rec["cot"] = cj;
    rec["grade"] = d.grade;
    rec["grade_label"] = grades.labels[d.grade];
    json anns = json::array();
    for (size_t a = 0; a < A; ++a) {
      const auto& v = votes[i][a];
      json sg = json::array();
      int parsed = 0;
      for (const auto& smp : v.samples) {
        sg.push_back(smp.parsed ? json(smp.cot.grade) : json(nullptr));
        parsed += smp.parsed;
      }
      json aj = {{"name", annotators[a]->name()},
                 {"kind", annotators[a]->kind()},
                 {"grade", v.grade >= 0 ? json(v.grade) : json(nullptr)},
                 {"samples", v.samples.size()},
                 {"parsed", parsed},
                 {"sample_grades", sg},
                 {"failed", v.failed}};
      if (v.failed) aj["error"] = v.error;
      anns.push_back(aj);
    }
    rec["annotators"] = anns;
    bool with_human = p.label >= 0;
    if (with_human)
      for (const auto& v : votes[i]) with_human &= v.grade < 0 || v.grade == p.label;
    rec["agreement"] = {{"annotators_agree", d.annotators_agree},
                        {"with_human", p.label >= 0 ? json(with_human) : json(nullptr)},
                        {"fraction", d.fraction},
                        {"kept_from", annotators[d.annotator]->name()}};
    if (d.flagged) {
      rec["flagged"] = true;
      ++flagged;
    }
    writer.write(rec);
  }
  writer.commit();

  // Stats.
  json per_json = json::array();
  for (size_t a = 0; a < A; ++a) {
    const auto& s = per[a];
    int64_t same = 0;
    for (size_t k = 0; k < s.human.size(); ++k) same += s.human[k] == s.vote[k];
    json j = {{"name", annotators[a]->name()},
              {"kind", annotators[a]->kind()},
              {"answered", s.answered},
              {"failed", s.failed},
              {"samples", s.samples},
              {"parsed", s.parsed},
              {"parse_failures", s.parse_failures},
              {"votes", s.votes},
              {"labelled_votes", s.human.size()},
              {"agreement_with_human", s.human.empty() ? 0.0 : static_cast<double>(same) / s.human.size()},
              {"kappa_with_human", cohen_kappa(s.human, s.vote, grades.size())},
              {"annotator", annotators[a]->stats()}};
    if (any_truth) j["truth_agreement"] = s.truth.to_json();
    per_json.push_back(j);
  }
  json inter = json::array();
  for (size_t a = 0; a < A; ++a)
    for (size_t b = a + 1; b < A; ++b) {
      std::vector<int> ga, gb;
      for (size_t i = 0; i < N; ++i)
        if (votes[i][a].grade >= 0 && votes[i][b].grade >= 0) {
          ga.push_back(votes[i][a].grade);
          gb.push_back(votes[i][b].grade);
        }
      int64_t same = 0;
      for (size_t k = 0; k < ga.size(); ++k) same += ga[k] == gb[k];
      inter.push_back({{"a", annotators[a]->name()},
                       {"b", annotators[b]->name()},
                       {"pairs", ga.size()},
                       {"agreement", ga.empty() ? 0.0 : static_cast<double>(same) / ga.size()},
                       {"kappa", cohen_kappa(ga, gb, grades.size())}});
    }
  json stats = {{"pairs", pairs_path},
                {"split", split},
                {"policy", policy_name(policy)},
                {"keep_disagreeing", keep_disagreeing},
                {"total", N},
                {"kept", kept},
                {"flagged", flagged},
                {"dropped", dropped},
                {"failed", failed},
                {"kept_by_grade", kept_by_grade},
                {"grades", grades.to_json()},
                {"annotators", per_json},
                {"inter_annotator", inter},
                {"kept_terms", terms},
                {"kept_unlocated_terms", unlocated}};
  if (any_truth) stats["kept_truth_agreement"] = kept_truth.to_json();
  write_file_atomic((std::filesystem::path(out_dir) / "annotate-stats.json").string(), stats.dump(2) + "\n");
  spdlog::info("annotate: {} pairs, kept {} ({} flagged), dropped {}, failed {}", N, kept, flagged,
               json(dropped).dump(), failed);
  return stats;
}

}  // namespace ellm
