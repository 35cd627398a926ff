#include "ellm/distill/teacher_targets.h"

#include <filesystem>

#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

int64_t TeacherTargets::row(const std::string& pair_id) const {
  auto it = row_of.find(pair_id);
  return it == row_of.end() ? -1 : it->second;
}

TeacherTargets read_teacher_targets(const std::string& dir, int num_grades) {
  TeacherTargets t;
  t.dir = dir;
  std::string jsonl = (fs::path(dir) / "teacher.jsonl").string(), st = (fs::path(dir) / "targets.safetensors").string();
  ELLM_CHECK(fs::is_regular_file(jsonl), "teacher directory {}: teacher.jsonl is missing", dir);
  ELLM_CHECK(fs::is_regular_file(st), "teacher directory {}: targets.safetensors is missing", dir);
  auto records = read_jsonl(jsonl);
  SafetensorsFile f(st);
  t.metadata = f.metadata();
  auto need = [&](const char* name, c10::ScalarType type, int64_t dims) {
    ELLM_CHECK(f.contains(name), "{}: tensor '{}' is missing", st, name);
    const auto& info = f.info(name);
    ELLM_CHECK(info.scalar_type == type, "{}: tensor '{}' has dtype {} (expected {})", st, name, info.dtype,
               torch_to_safetensors(type));
    ELLM_CHECK(static_cast<int64_t>(info.shape.size()) == dims, "{}: tensor '{}' has {} dims (expected {})", st, name,
               info.shape.size(), dims);
    return f.load(name);
  };
  t.input_ids = need("input_ids", torch::kInt, 2).to(torch::kLong);
  t.bio = need("bio", torch::kByte, 2).to(torch::kLong);
  t.attn_factor = need("attn_factor", torch::kFloat, 2);
  t.grade_probs = need("grade_probs", torch::kFloat, 2);
  t.score = need("score", torch::kFloat, 1);
  for (auto* x : {&t.input_ids, &t.bio, &t.attn_factor, &t.grade_probs, &t.score}) *x = x->contiguous();
  const int64_t n = t.input_ids.size(0), l = t.input_ids.size(1);
  ELLM_CHECK(static_cast<int64_t>(records.size()) == n, "{}: {} records but {} has {} rows", jsonl, records.size(), st, n);
  ELLM_CHECK(t.bio.sizes() == t.input_ids.sizes() && t.attn_factor.sizes() == t.input_ids.sizes(),
             "{}: bio and attn_factor must have input_ids' shape [{}, {}]", st, n, l);
  ELLM_CHECK(t.grade_probs.size(0) == n && t.score.size(0) == n, "{}: grade_probs and score must have {} rows", st, n);
  ELLM_CHECK(t.grade_probs.size(1) == num_grades, "{}: grade_probs has {} grades but the dataset has {}", st,
             t.grade_probs.size(1), num_grades);
  ELLM_CHECK(t.bio.max().item<int64_t>() < 9, "{}: bio holds a tag ≥ 9 (the tag set has 9)", st);
  auto sums = t.grade_probs.sum(1);
  for (int64_t r = 0; r < n; ++r) {
    float s = sums[r].item<float>();
    ELLM_CHECK(std::abs(s - 1.0f) < 1e-3, "{}: grade_probs row {} (pair {}) sums to {}, not 1", st, r,
               records[r].value("id", "?"), s);
  }
  auto factor_sums = t.attn_factor.sum(1);
  // The teacher's own flag, when it writes one: has_cot [N] uint8.
  torch::Tensor flag;
  if (f.contains("has_cot")) {
    flag = f.load("has_cot");
    ELLM_CHECK(flag.dim() == 1 && flag.size(0) == n, "{}: tensor 'has_cot' must be [{}]", st, n);
    flag = flag.to(torch::kLong).contiguous();
  }
  for (int64_t r = 0; r < n; ++r) {
    const json& rec = records[r];
    ELLM_CHECK(rec.contains("id") && rec["id"].is_string(), "{}:{}: record has no string 'id'", jsonl, r + 1);
    std::string id = rec["id"];
    ELLM_CHECK(t.row_of.emplace(id, r).second, "{}:{}: pair id '{}' appears twice", jsonl, r + 1, id);
    t.ids.push_back(id);
    bool cot = rec.contains("cot") && !rec["cot"].is_null() &&
               !(rec["cot"].is_string() && rec["cot"].get<std::string>().empty()) &&
               !(rec["cot"].is_object() && rec["cot"].empty());
    if (rec.value("cot_ok", true) == false || rec.value("targets", true) == false) cot = false;
    if (flag.defined()) cot = flag[r].item<int64_t>() != 0;
    t.has_cot.push_back(cot && factor_sums[r].item<float>() > 0);
  }
  return t;
}

}  // namespace ellm
