#pragma once
// One line of teacher.jsonl (DESIGN §2): what the teacher said about one pair.
//
//   {"id": "...", "cot": "<generated CoT text>" | null, "grade_probs": [p per grade, scale order],
//    "score": Σ p·value, "pred": "<most probable grade>", "flagged": false,
//    "parse_error": "CoT line 3: unknown_verdict: ..."   (only when flagged),
//    "query": "...", "item_text": "..."                   (for `ellm teacher inspect`)}
//
// flagged: the teacher's CoT did not parse (text/cot.h). Its distribution and
// score are kept (they do not depend on the CoT's structure) but it yields no
// CoT targets: no tags are made up for it. In --no-cot mode there is no CoT
// (null) and nothing is flagged.
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/text/cot.h"

namespace ellm {

struct TeacherRecord {
  std::string id;
  bool has_cot = false;  // a CoT was generated (false in --no-cot mode)
  std::string cot;
  std::vector<double> grade_probs;
  double score = 0;
  int pred = -1;
  bool flagged = false;
  std::string parse_error;
  std::string query, item_text;
};

// Parses the CoT (when `cot` is given), computes score and pred.
TeacherRecord make_teacher_record(const Pair& pair, const std::string* cot, std::vector<double> grade_probs,
                                  const GradeScale& grades);

json teacher_record_to_json(const TeacherRecord& r, const GradeScale& grades);
// Validates (probabilities: one per grade, finite, non-negative, sum 1 ± 1e-3); errors name `where`.
TeacherRecord teacher_record_from_json(const json& j, const std::string& where, const GradeScale& grades);

// The record's CoT parsed and located on its pair; false (and no CoT) when it has none or it is flagged.
bool located_cot(const TeacherRecord& r, const GradeScale& grades, Cot& out);

}  // namespace ellm
