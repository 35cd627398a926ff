#pragma once
// Self-consistency (collaborative labelling): from k samples of each of one or
// more annotators and the human grade, decide whether a pair's CoT is kept, with
// which grade, and which sample is the kept CoT.
//
//  1. Each sample is parsed (text/cot.h); a sample that does not parse is counted
//     (by reason code) and ignored. An annotator's vote is the majority grade of
//     its parsed samples (ties: the grade whose first sample came first).
//  2. Policy:
//     all-agree   every voting annotator votes the same grade, and it equals the
//                 human grade (when the pair is labelled);
//     majority    a grade holds more than half of the ballots (the annotators'
//                 votes plus the human grade); kept pairs that are not unanimous
//                 are flagged;
//     human-only  at least one annotator votes the human grade (unlabelled pairs:
//                 as all-agree); the others may differ (then flagged).
//     A pair that fails the policy is dropped, or, with keep_disagreeing, kept
//     and flagged (its grade: the human grade if an annotator voted it, else the
//     annotators' majority).
//  3. The kept CoT: among parsed samples whose grade is the final grade, the one
//     whose (dimension, verdict) steps are shared by the most other parsed samples;
//     ties go to the earlier annotator, then the earlier sample.
// Drop reasons: failed (every annotator's request failed), parse_failure (no
// sample parsed), annotators_disagree, disagrees_with_human, no_majority.
#include <map>
#include <string>
#include <vector>

#include "ellm/annotate/annotator.h"
#include "ellm/text/cot.h"

namespace ellm {

enum class Policy { all_agree, majority, human_only };
Policy parse_policy(const std::string& name);  // "all-agree" | "majority" | "human-only"
const char* policy_name(Policy p);

struct ParsedSample {
  std::string text;
  bool parsed = false;
  std::string error;  // reason code when !parsed
  Cot cot;
};

struct AnnotatorVote {
  bool failed = false;
  std::string error;
  std::vector<ParsedSample> samples;
  int grade = -1;  // majority over parsed samples; -1 when none parsed
};

AnnotatorVote parse_answer(const AnnotatorAnswer& answer, const GradeScale& grades);

struct Decision {
  bool keep = false;
  bool flagged = false;
  int grade = -1;
  std::string drop_reason;     // when !keep
  int annotator = -1, sample = -1;  // the kept CoT
  bool annotators_agree = true;     // every voting annotator voted the same grade
  double fraction = 0;              // ballots (votes + human) equal to the final grade / ballots
};

Decision decide(const std::vector<AnnotatorVote>& votes, int human, Policy policy, bool keep_disagreeing);

// Majority of grades; ties go to the grade that appears first. -1 when empty.
int majority_grade(const std::vector<int>& grades);

// Cohen's kappa of two raters' grades (same length, values in [0, k)):
// (p_o - p_e) / (1 - p_e); 1 when both are constant and equal, 0 when p_e = 1 otherwise.
double cohen_kappa(const std::vector<int>& a, const std::vector<int>& b, int k);

// Per-dimension agreement of a CoT's verdicts with ground truth (synthetic data):
// each truth dimension counts once; a CoT without that dimension counts as wrong.
struct TruthAgreement {
  int64_t dims = 0, agree = 0;
  std::map<std::string, std::pair<int64_t, int64_t>> by_dimension;  // kind → (agree, total)
  void add(const Cot& cot, const std::map<std::string, std::string>& truth);
  double rate() const { return dims ? static_cast<double>(agree) / dims : 0.0; }
  json to_json() const;
};

}  // namespace ellm
