#include "ellm/eval/predictions.h"
#include "ellm/models/student.h"

#include <cmath>
#include <filesystem>
#include <unordered_map>

#include "ellm/eval/overlap.h"
#include "ellm/io/jsonl.h"
#include "ellm/text/item_text.h"
#include "ellm/util/config.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/log.h"

namespace ellm {

double binary_score(const Prediction& p, const GradeScale& scale) {
  if (p.grade_probs.empty()) return p.score;
  double s = 0;
  for (int g = scale.positive_from; g < static_cast<int>(p.grade_probs.size()); ++g) s += p.grade_probs[g];
  return s;
}

std::string binary_score_kind(const std::vector<Prediction>& preds) {
  size_t with_probs = 0;
  for (const auto& p : preds) with_probs += !p.grade_probs.empty();
  if (with_probs == preds.size()) return "p_relevant";
  if (with_probs == 0) return "score";
  fail("{} of {} predictions have grade_probs and the others only a score: binary metrics need one kind for all",
       with_probs, preds.size());
}

namespace {

std::vector<double> parse_grade_probs(const json& v, const GradeScale& scale, const std::string& where) {
  std::vector<double> probs(scale.size(), 0.0);
  if (v.is_array()) {
    if (static_cast<int>(v.size()) != scale.size())
      fail("{}: 'grade_probs' has {} values but the grade scale has {} grades ({})", where, v.size(), scale.size(),
           json(scale.labels).dump());
    for (int g = 0; g < scale.size(); ++g) {
      if (!v[g].is_number()) fail("{}: grade_probs[{}] is not a number", where, g);
      probs[g] = v[g].get<double>();
    }
  } else if (v.is_object()) {
    if (static_cast<int>(v.size()) != scale.size())
      fail("{}: 'grade_probs' has {} entries but the grade scale has {} grades ({})", where, v.size(), scale.size(),
           json(scale.labels).dump());
    for (auto it = v.begin(); it != v.end(); ++it) {
      int g = scale.index_of(it.key());
      if (g < 0) fail("{}: grade_probs names unknown grade '{}' (grades: {})", where, it.key(), json(scale.labels).dump());
      if (!it.value().is_number()) fail("{}: grade_probs['{}'] is not a number", where, it.key());
      probs[g] = it.value().get<double>();
    }
  } else {
    fail("{}: 'grade_probs' must be a list of {} numbers or an object keyed by grade", where, scale.size());
  }
  double sum = 0;
  for (int g = 0; g < scale.size(); ++g) {
    if (!std::isfinite(probs[g])) fail("{}: grade_probs[{}] is {}", where, g, probs[g]);
    if (probs[g] < 0 || probs[g] > 1) fail("{}: grade_probs[{}] = {} is outside [0, 1]", where, g, probs[g]);
    sum += probs[g];
  }
  if (std::fabs(sum - 1.0) > 1e-3) fail("{}: grade_probs sum to {}, not 1", where, sum);
  return probs;
}

}  // namespace

std::vector<Prediction> read_scores_file(const std::string& path, const std::vector<Pair>& pairs,
                                         const GradeScale& scale, int64_t* ignored_rows) {
  std::unordered_map<std::string, size_t> index;
  for (size_t i = 0; i < pairs.size(); ++i) index.emplace(pairs[i].id, i);
  std::vector<Prediction> preds(pairs.size());
  std::vector<std::string> seen_at(pairs.size());
  int64_t ignored = 0;
  for_each_jsonl(path, [&](const json& row, const JsonlReader& reader) {
    const std::string where = reader.where();
    if (!row.is_object()) fail("{}: a scores row must be a JSON object", where);
    if (!row.contains("id") || !row["id"].is_string()) fail("{}: missing string field 'id'", where);
    const std::string id = row["id"].get<std::string>();
    auto it = index.find(id);
    if (it == index.end()) {
      ++ignored;
      return;
    }
    if (!seen_at[it->second].empty()) fail("{}: id '{}' already scored at {}", where, id, seen_at[it->second]);
    seen_at[it->second] = where;
    Prediction p;
    bool has_probs = row.contains("grade_probs") && !row["grade_probs"].is_null();
    bool has_score = row.contains("score") && !row["score"].is_null();
    if (!has_probs && !has_score) fail("{}: id '{}' has neither 'grade_probs' nor 'score'", where, id);
    if (has_probs) p.grade_probs = parse_grade_probs(row["grade_probs"], scale, where);
    if (has_score) {
      if (!row["score"].is_number()) fail("{}: 'score' must be a number", where);
      p.score = row["score"].get<double>();
      if (!std::isfinite(p.score)) fail("{}: 'score' is {}", where, p.score);
    }
    if (row.contains("cot") && !row["cot"].is_null()) {
      const json& c = row["cot"];
      if (c.is_string()) p.cot = c.get<std::string>();
      else if (c.is_object() && c.contains("text") && c["text"].is_string()) p.cot = c["text"].get<std::string>();
      else if (!c.is_object() || !c.contains("text") || !c["text"].is_null())
        fail("{}: 'cot' must be a string or an object with a string 'text'", where);
    }
    preds[it->second] = std::move(p);
  });
  for (size_t i = 0; i < pairs.size(); ++i)
    if (seen_at[i].empty())
      fail("{}: no scores for pair '{}' (and maybe others): the file must score every evaluated pair", path,
           pairs[i].id);
  if (ignored_rows) *ignored_rows = ignored;
  if (ignored) spdlog::info("{}: {} rows score pairs outside the evaluated set (ignored)", path, ignored);
  return preds;
}

std::vector<Prediction> overlap_predictions(const std::vector<Pair>& pairs) {
  std::vector<Prediction> preds(pairs.size());
  for (size_t i = 0; i < pairs.size(); ++i) preds[i].score = overlap_score(pairs[i].query, item_text(pairs[i].item));
  return preds;
}

std::vector<Prediction> load_predictions(const PredictionSource& source, const std::vector<Pair>& pairs,
                                         const GradeScale& scale, json* info) {
  json desc;
  std::vector<Prediction> preds;
  switch (source.kind) {
    case PredictionSource::Kind::scores: {
      int64_t ignored = 0;
      preds = read_scores_file(source.path, pairs, scale, &ignored);
      desc = {{"kind", "scores"}, {"path", source.path}, {"ignored_rows", ignored}};
      break;
    }
    case PredictionSource::Kind::overlap:
      preds = overlap_predictions(pairs);
      desc = {{"kind", "overlap"}, {"rule", "fraction of query words found in item_text (eval/overlap.h)"}};
      break;
    case PredictionSource::Kind::model: {
      auto config_path = std::filesystem::path(source.path) / "config.json";
      if (!std::filesystem::exists(config_path)) fail("{}: no config.json: not a model directory", source.path);
      json config = read_json_file(config_path.string());
      if (!config.contains("model_type") || !config["model_type"].is_string())
        fail("{}: missing string field 'model_type'", config_path.string());
      const std::string type = config["model_type"].get<std::string>();
      if (type == "ellm-cross-encoder" || type == "ellm-two-tower") {
        auto probs = student_grade_probs(source.path, pairs, source.batch, parse_dtype(source.dtype));
        ELLM_CHECK(probs.size() == pairs.size(), "{}: {} predictions for {} pairs", source.path, probs.size(),
                   pairs.size());
        preds.resize(pairs.size());
        for (size_t i = 0; i < pairs.size(); ++i) {
          if (static_cast<int>(probs[i].size()) != scale.size())
            fail("{}: the model predicts {} grades but the pairs' scale has {}", source.path, probs[i].size(),
                 scale.size());
          preds[i].grade_probs.assign(probs[i].begin(), probs[i].end());
          double expected = 0;
          for (int g = 0; g < scale.size(); ++g) expected += probs[i][g] * scale.values[g];
          preds[i].score = expected;
        }
        desc = {{"kind", "model"}, {"path", source.path}, {"model_type", type}, {"dtype", source.dtype}};
        break;
      }
      if (type == "qwen2" || type == "llama")
        fail("{}: scoring a teacher (model_type '{}') is not available in this build of ellm eval; run `ellm "
             "teacher --model {} --pairs ... --out DIR` and pass --scores DIR/teacher.jsonl",
             source.path, type, source.path);
      fail("{}: model_type '{}' is not a model ellm eval can score (students: ellm-cross-encoder, ellm-two-tower; "
           "teachers: qwen2, llama)",
           config_path.string(), type);
    }
  }
  if (info) *info = desc;
  return preds;
}

void write_scores_file(const std::string& path, const std::vector<Pair>& pairs, const std::vector<Prediction>& preds) {
  ELLM_CHECK(pairs.size() == preds.size(), "{} pairs but {} predictions", pairs.size(), preds.size());
  JsonlWriter out(path);
  for (size_t i = 0; i < pairs.size(); ++i) {
    json row = {{"id", pairs[i].id}};
    if (!preds[i].grade_probs.empty()) row["grade_probs"] = preds[i].grade_probs;
    if (!std::isnan(preds[i].score)) row["score"] = preds[i].score;
    out.write(row);
  }
  out.commit();
}

}  // namespace ellm
