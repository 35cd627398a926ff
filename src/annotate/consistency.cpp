#include "ellm/annotate/consistency.h"

#include <algorithm>
#include <set>

#include "ellm/util/error.h"

namespace ellm {

Policy parse_policy(const std::string& name) {
  if (name == "all-agree") return Policy::all_agree;
  if (name == "majority") return Policy::majority;
  if (name == "human-only") return Policy::human_only;
  fail("unknown policy '{}' (all-agree, majority, human-only)", name);
}

const char* policy_name(Policy p) {
  switch (p) {
    case Policy::all_agree: return "all-agree";
    case Policy::majority: return "majority";
    case Policy::human_only: return "human-only";
  }
  return "?";
}

int majority_grade(const std::vector<int>& grades) {
  int best = -1, best_n = 0;
  for (size_t i = 0; i < grades.size(); ++i) {
    int n = static_cast<int>(std::count(grades.begin(), grades.end(), grades[i]));
    if (n > best_n) best = grades[i], best_n = n;
  }
  return best;
}

AnnotatorVote parse_answer(const AnnotatorAnswer& answer, const GradeScale& grades) {
  AnnotatorVote v;
  v.failed = answer.failed;
  v.error = answer.error;
  std::vector<int> gs;
  for (const auto& text : answer.samples) {
    ParsedSample s;
    s.text = text;
    try {
      s.cot = parse_cot(text, grades);
      s.parsed = true;
      gs.push_back(s.cot.grade);
    } catch (const CotParseError& e) {
      s.error = e.reason();
    }
    v.samples.push_back(std::move(s));
  }
  v.grade = majority_grade(gs);
  return v;
}

Decision decide(const std::vector<AnnotatorVote>& votes, int human, Policy policy, bool keep_disagreeing) {
  Decision d;
  std::vector<int> voted;
  bool any_answer = false;
  for (const auto& v : votes) {
    any_answer |= !v.failed;
    if (v.grade >= 0) voted.push_back(v.grade);
  }
  if (voted.empty()) {
    d.drop_reason = any_answer ? "parse_failure" : "failed";
    return d;
  }
  d.annotators_agree = std::all_of(voted.begin(), voted.end(), [&](int g) { return g == voted[0]; });
  bool labelled = human >= 0;
  bool voted_human = labelled && std::count(voted.begin(), voted.end(), human) > 0;
  bool ok = false;
  int grade = -1;
  if (policy == Policy::majority) {
    std::vector<int> ballots = voted;
    if (labelled) ballots.push_back(human);
    int g = majority_grade(ballots);
    if (std::count(ballots.begin(), ballots.end(), g) * 2 > static_cast<long>(ballots.size()) &&
        std::count(voted.begin(), voted.end(), g) > 0) {
      ok = true;
      grade = g;
      d.flagged = std::any_of(ballots.begin(), ballots.end(), [&](int b) { return b != g; });
    } else {
      d.drop_reason = "no_majority";
    }
  } else if (policy == Policy::human_only && labelled) {
    ok = voted_human;
    grade = human;
    d.flagged = ok && !d.annotators_agree;
    if (!ok) d.drop_reason = "disagrees_with_human";
  } else {
    ok = d.annotators_agree && (!labelled || voted[0] == human);
    grade = voted[0];
    if (!ok) d.drop_reason = d.annotators_agree ? "disagrees_with_human" : "annotators_disagree";
  }
  if (!ok) {
    if (!keep_disagreeing) return d;
    grade = voted_human ? human : majority_grade(voted);
    d.flagged = true;
    d.drop_reason.clear();
  }
  d.keep = true;
  d.grade = grade;
  int ballots = static_cast<int>(voted.size()) + (labelled ? 1 : 0);
  int same = static_cast<int>(std::count(voted.begin(), voted.end(), grade)) + (labelled && human == grade ? 1 : 0);
  d.fraction = static_cast<double>(same) / ballots;

  // The kept CoT: the sample of the final grade whose steps the other samples share most.
  std::map<std::pair<std::string, int>, int> step_count;
  for (const auto& v : votes)
    for (const auto& s : v.samples)
      if (s.parsed)
        for (const auto& st : s.cot.steps) step_count[{st.dimension, static_cast<int>(st.verdict)}]++;
  int best_score = -1;
  for (size_t a = 0; a < votes.size(); ++a)
    for (size_t k = 0; k < votes[a].samples.size(); ++k) {
      const auto& s = votes[a].samples[k];
      if (!s.parsed || s.cot.grade != grade) continue;
      int score = 0;
      for (const auto& st : s.cot.steps) score += step_count[{st.dimension, static_cast<int>(st.verdict)}] - 1;
      if (score > best_score) {
        best_score = score;
        d.annotator = static_cast<int>(a);
        d.sample = static_cast<int>(k);
      }
    }
  if (d.annotator < 0) {  // no sample concludes the final grade (a flagged human grade)
    grade = majority_grade(voted);
    d.grade = grade;
    for (size_t a = 0; a < votes.size() && d.annotator < 0; ++a)
      for (size_t k = 0; k < votes[a].samples.size() && d.annotator < 0; ++k)
        if (votes[a].samples[k].parsed && votes[a].samples[k].cot.grade == grade) {
          d.annotator = static_cast<int>(a);
          d.sample = static_cast<int>(k);
        }
  }
  return d;
}

double cohen_kappa(const std::vector<int>& a, const std::vector<int>& b, int k) {
  ELLM_CHECK(a.size() == b.size(), "cohen_kappa: {} vs {} ratings", a.size(), b.size());
  if (a.empty()) return 0.0;
  std::vector<double> pa(k, 0), pb(k, 0);
  double po = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ELLM_CHECK(a[i] >= 0 && a[i] < k && b[i] >= 0 && b[i] < k, "cohen_kappa: grade outside [0, {})", k);
    po += a[i] == b[i];
    pa[a[i]] += 1;
    pb[b[i]] += 1;
  }
  double n = static_cast<double>(a.size());
  po /= n;
  double pe = 0;
  for (int g = 0; g < k; ++g) pe += (pa[g] / n) * (pb[g] / n);
  if (pe >= 1.0 - 1e-12) return po >= 1.0 - 1e-12 ? 1.0 : 0.0;
  return (po - pe) / (1.0 - pe);
}


void TruthAgreement::add(const Cot& cot, const std::map<std::string, std::string>& truth) {
  for (const auto& [dim, verdict] : truth) {
    bool same = false;
    for (const auto& s : cot.steps)
      if (s.dimension == dim) same = verdict_name(s.verdict) == verdict;
    auto& [ok, total] = by_dimension[dim];
    ++total;
    ++dims;
    if (same) ++ok, ++agree;
  }
}

json TruthAgreement::to_json() const {
  json by = json::object();
  for (const auto& [dim, c] : by_dimension)
    by[dim] = {{"agree", c.first}, {"total", c.second}, {"rate", c.second ? static_cast<double>(c.first) / c.second : 0.0}};
  return {{"dimensions", dims}, {"agree", agree}, {"rate", rate()}, {"by_dimension", by}};
}

}  // namespace ellm
