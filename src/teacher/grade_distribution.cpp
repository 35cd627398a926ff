#include "ellm/teacher/grade_distribution.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "ellm/text/tokenizer.h"
#include "ellm/util/error.h"

namespace ellm {

namespace {
bool is_proper_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  return a.size() < b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// True when some grade's name is a token prefix of another's (or equal to it).
bool ambiguous(const GradeTokens& g) {
  for (size_t a = 0; a < g.names.size(); ++a)
    for (size_t b = 0; b < g.names.size(); ++b)
      if (a != b && (g.names[a] == g.names[b] || is_proper_prefix(g.names[a], g.names[b]))) return true;
  return false;
}
}  // namespace

GradeTokens split_grade_tokens(const std::vector<std::vector<int64_t>>& full) {
  ELLM_CHECK(!full.empty(), "grade tokens: no grades");
  size_t lcp = full[0].size();
  for (const auto& s : full) {
    size_t i = 0;
    while (i < lcp && i < s.size() && s[i] == full[0][i]) ++i;
    lcp = i;
  }
  // Every grade needs at least one token of its own to be scored.
  for (const auto& s : full) lcp = std::min(lcp, s.size() == 0 ? size_t{0} : s.size() - 1);
  ELLM_CHECK(lcp > 0, "grade tokens: the context before the grade is empty (nothing to condition on)");
  GradeTokens g;
  g.prefix.assign(full[0].begin(), full[0].begin() + static_cast<std::ptrdiff_t>(lcp));
  for (const auto& s : full) g.names.emplace_back(s.begin() + static_cast<std::ptrdiff_t>(lcp), s.end());
  return g;
}

GradeTokens grade_tokens(const Tokenizer& tok, const std::vector<int64_t>& context_ids, const std::string& text_before,
                         const std::vector<std::string>& labels, const std::string& terminator) {
  auto build = [&](const std::string& end) {
    std::vector<std::vector<int64_t>> full;
    for (const auto& label : labels) {
      std::vector<int64_t> s = context_ids;
      auto enc = tok.encode(text_before + label + end, false);
      s.insert(s.end(), enc.ids.begin(), enc.ids.end());
      full.push_back(std::move(s));
    }
    return split_grade_tokens(full);
  };
  GradeTokens g = build("");
  if (!ambiguous(g)) return g;
  g = build(terminator);
  if (ambiguous(g))
    fail("grade tokens: grade names {} cannot be told apart by {} even with the terminator {}", json(labels).dump(),
         tok.describe(), json(terminator).dump());
  return g;
}

std::vector<std::vector<double>> grade_distributions(const TokenLogProbs& logprobs,
                                                     const std::vector<GradeTokens>& items) {
  // One query per distinct (sequence); each wants the tokens that follow it in some name.
  std::map<std::vector<int64_t>, size_t> index;
  std::vector<std::vector<int64_t>> sequences, wanted;
  // per item, per grade, per name token: (query, position of the token in wanted[query])
  std::vector<std::vector<std::vector<std::pair<size_t, size_t>>>> refs(items.size());
  for (size_t it = 0; it < items.size(); ++it) {
    const GradeTokens& g = items[it];
    ELLM_CHECK(!g.prefix.empty(), "grade distribution: item {} has an empty prefix", it);
    refs[it].resize(g.names.size());
    for (size_t k = 0; k < g.names.size(); ++k) {
      ELLM_CHECK(!g.names[k].empty(), "grade distribution: item {}, grade {} has no tokens", it, k);
      std::vector<int64_t> seq = g.prefix;
      for (int64_t token : g.names[k]) {
        auto [pos, inserted] = index.emplace(seq, sequences.size());
        if (inserted) {
          sequences.push_back(seq);
          wanted.emplace_back();
        }
        auto& w = wanted[pos->second];
        auto found = std::find(w.begin(), w.end(), token);
        size_t slot = static_cast<size_t>(found - w.begin());
        if (found == w.end()) w.push_back(token);
        refs[it][k].emplace_back(pos->second, slot);
        seq.push_back(token);
      }
    }
  }
  std::vector<std::vector<double>> lp = logprobs(sequences, wanted);
  ELLM_CHECK(lp.size() == sequences.size(), "grade distribution: the model answered {} of {} queries", lp.size(),
             sequences.size());
  for (size_t q = 0; q < lp.size(); ++q)
    ELLM_CHECK(lp[q].size() == wanted[q].size(), "grade distribution: query {} got {} log-probs for {} tokens", q,
               lp[q].size(), wanted[q].size());

  std::vector<std::vector<double>> out;
  for (size_t it = 0; it < items.size(); ++it) {
    std::vector<double> logp;
    for (const auto& chain : refs[it]) {
      double s = 0;
      for (auto [q, slot] : chain) s += lp[q][slot];
      logp.push_back(s);
    }
    double mx = *std::max_element(logp.begin(), logp.end());
    ELLM_CHECK(std::isfinite(mx), "grade distribution: item {}: every grade has probability 0 (or NaN)", it);
    double z = 0;
    for (double v : logp) z += std::exp(v - mx);
    std::vector<double> p;
    for (double v : logp) p.push_back(std::exp(v - mx) / z);
    out.push_back(std::move(p));
  }
  return out;
}

double expected_score(const std::vector<double>& probs, const GradeScale& grades) {
  ELLM_CHECK(probs.size() == grades.values.size(), "score: {} probabilities for {} grades", probs.size(),
             grades.values.size());
  double s = 0;
  for (size_t k = 0; k < probs.size(); ++k) s += probs[k] * grades.values[k];
  return s;
}

int most_probable(const std::vector<double>& probs) {
  ELLM_CHECK(!probs.empty(), "most_probable: empty distribution");
  return static_cast<int>(std::max_element(probs.begin(), probs.end()) - probs.begin());
}

}  // namespace ellm
