#include "ellm/teacher/record.h"

#include <cmath>

#include "ellm/teacher/grade_distribution.h"
#include "ellm/text/item_text.h"
#include "ellm/util/error.h"

namespace ellm {

TeacherRecord make_teacher_record(const Pair& pair, const std::string* cot, std::vector<double> grade_probs,
                                  const GradeScale& grades) {
  TeacherRecord r;
  r.id = pair.id;
  r.query = pair.query;
  r.item_text = item_text(pair.item);
  r.score = expected_score(grade_probs, grades);
  r.pred = most_probable(grade_probs);
  r.grade_probs = std::move(grade_probs);
  if (cot) {
    r.has_cot = true;
    r.cot = *cot;
    try {
      parse_cot(r.cot, grades);
    } catch (const CotParseError& e) {
      r.flagged = true;
      r.parse_error = e.what();
    }
  }
  return r;
}

json teacher_record_to_json(const TeacherRecord& r, const GradeScale& grades) {
  json j;
  j["id"] = r.id;
  j["cot"] = r.has_cot ? json(r.cot) : json(nullptr);
  j["grade_probs"] = r.grade_probs;
  j["score"] = r.score;
  j["pred"] = grades.labels.at(static_cast<size_t>(r.pred));
  j["flagged"] = r.flagged;
  if (r.flagged) j["parse_error"] = r.parse_error;
  j["query"] = r.query;
  j["item_text"] = r.item_text;
  return j;
}

TeacherRecord teacher_record_from_json(const json& j, const std::string& where, const GradeScale& grades) {
  auto field = [&](const char* name) -> const json& {
    if (!j.is_object() || !j.contains(name)) fail("{}: teacher record has no '{}'", where, name);
    return j.at(name);
  };
  TeacherRecord r;
  try {
    r.id = field("id").get<std::string>();
    const json& cot = field("cot");
    r.has_cot = !cot.is_null();
    if (r.has_cot) r.cot = cot.get<std::string>();
    r.grade_probs = field("grade_probs").get<std::vector<double>>();
    r.score = field("score").get<double>();
    r.pred = grades.index_of(field("pred").get<std::string>());
    r.flagged = field("flagged").get<bool>();
    if (r.flagged) r.parse_error = field("parse_error").get<std::string>();
    r.query = j.value("query", std::string());
    r.item_text = j.value("item_text", std::string());
  } catch (const json::exception& e) {
    fail("{}: teacher record: {}", where, e.what());
  }
  ELLM_CHECK(r.pred >= 0, "{}: teacher record {}: pred '{}' is not a grade", where, r.id, j.at("pred").dump());
  ELLM_CHECK(static_cast<int>(r.grade_probs.size()) == grades.size(), "{}: teacher record {}: {} grade_probs for {} grades",
             where, r.id, r.grade_probs.size(), grades.size());
  double sum = 0;
  for (double p : r.grade_probs) {
    ELLM_CHECK(std::isfinite(p) && p >= 0, "{}: teacher record {}: grade_probs has {}", where, r.id, p);
    sum += p;
  }
  ELLM_CHECK(std::abs(sum - 1) < 1e-3, "{}: teacher record {}: grade_probs sum to {}", where, r.id, sum);
  return r;
}

bool located_cot(const TeacherRecord& r, const GradeScale& grades, Cot& out) {
  if (!r.has_cot || r.flagged) return false;
  out = parse_cot(r.cot, grades);
  locate_terms(out, r.query, r.item_text);
  return true;
}

}  // namespace ellm
