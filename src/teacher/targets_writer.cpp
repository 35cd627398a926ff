#include "ellm/teacher/targets_writer.h"

#include <torch/torch.h>

#include <algorithm>

#include "ellm/io/atomic_file.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/text/tokenizer.h"
#include "ellm/util/error.h"

namespace ellm {

json write_teacher_outputs(const std::string& out_dir, const std::vector<TeacherRecord>& records,
                           const TargetsConfig& config) {
  ELLM_CHECK(config.student != nullptr, "teacher outputs: no student tokenizer");
  const GradeScale& grades = config.grades;
  const int64_t n = static_cast<int64_t>(records.size()), k = grades.size();
  ensure_dir(out_dir);

  StudentInputBuilder builder(config.student, config.limits);
  const SpecialIds special = builder.special();
  const int64_t max_len = config.limits.max_length;
  std::vector<StudentTokens> inputs;
  std::vector<std::vector<uint8_t>> bio;
  std::vector<std::vector<float>> factors;
  std::vector<uint8_t> has_cot;
  json stats = {{"pairs", n}, {"with_cot", 0}, {"flagged", 0}, {"no_cot", 0}, {"unlocated_terms", 0},
                {"truncated_inputs", 0}, {"flagged_by_reason", json::object()}};
  std::vector<int64_t> pred_counts(static_cast<size_t>(k), 0);
  double score_sum = 0;
  for (const TeacherRecord& r : records) {
    StudentTokens in = builder.cross(r.query, r.item_text);
    {
      // Cut when the whole query and item would not have fit.
      auto q = config.student->encode(r.query, false).size(), it = config.student->encode(r.item_text, false).size();
      if (static_cast<int64_t>(q + it + 3) > static_cast<int64_t>(in.size()))
        stats["truncated_inputs"] = stats["truncated_inputs"].get<int64_t>() + 1;
    }
    Cot cot;
    bool ok = located_cot(r, grades, cot);
    if (ok) {
      stats["with_cot"] = stats["with_cot"].get<int64_t>() + 1;
      stats["unlocated_terms"] = stats["unlocated_terms"].get<int64_t>() + unlocated_terms(cot);
    } else if (r.flagged) {
      stats["flagged"] = stats["flagged"].get<int64_t>() + 1;
      // "CoT line N: reason: detail" → reason
      std::string reason = r.parse_error;
      auto a = reason.find(": "), b = a == std::string::npos ? a : reason.find(':', a + 2);
      if (a != std::string::npos && b != std::string::npos) reason = reason.substr(a + 2, b - a - 2);
      stats["flagged_by_reason"][reason] = stats["flagged_by_reason"].value(reason, 0) + 1;
    } else {
      stats["no_cot"] = stats["no_cot"].get<int64_t>() + 1;
    }
    // Rows without a usable CoT get the neutral targets (no tags, uniform factors) and has_cot = 0.
    if (!ok) cot = Cot{};
    bio.push_back(bio_tags(in.alignment, cot));
    factors.push_back(attention_factors(in.alignment, cot, config.factors));
    has_cot.push_back(ok ? 1 : 0);
    pred_counts[static_cast<size_t>(r.pred)] += 1;
    score_sum += r.score;
    inputs.push_back(std::move(in));
  }

  auto ids_t = torch::full({n, max_len}, special.pad, torch::kInt32);
  auto seg_t = torch::zeros({n, max_len}, torch::kUInt8);
  auto bio_t = torch::zeros({n, max_len}, torch::kUInt8);
  auto attn_t = torch::zeros({n, max_len}, torch::kFloat32);
  auto probs_t = torch::zeros({n, k}, torch::kFloat32);
  auto score_t = torch::zeros({n}, torch::kFloat32);
  auto cot_t = torch::zeros({n}, torch::kUInt8);
  auto ids_a = ids_t.accessor<int32_t, 2>();
  auto seg_a = seg_t.accessor<uint8_t, 2>();
  auto bio_a = bio_t.accessor<uint8_t, 2>();
  auto attn_a = attn_t.accessor<float, 2>();
  auto probs_a = probs_t.accessor<float, 2>();
  for (int64_t i = 0; i < n; ++i) {
    const StudentTokens& in = inputs[static_cast<size_t>(i)];
    for (size_t t = 0; t < in.ids.size(); ++t) {
      ids_a[i][static_cast<int64_t>(t)] = static_cast<int32_t>(in.ids[t]);
      seg_a[i][static_cast<int64_t>(t)] = static_cast<uint8_t>(in.alignment.segment[t]);
      bio_a[i][static_cast<int64_t>(t)] = bio[static_cast<size_t>(i)][t];
      attn_a[i][static_cast<int64_t>(t)] = factors[static_cast<size_t>(i)][t];
    }
    const TeacherRecord& r = records[static_cast<size_t>(i)];
    for (int64_t g = 0; g < k; ++g) probs_a[i][g] = static_cast<float>(r.grade_probs[static_cast<size_t>(g)]);
    score_t[i] = static_cast<float>(r.score);
    cot_t[i] = has_cot[static_cast<size_t>(i)];
  }

  std::map<std::string, std::string> meta = config.metadata;
  json tags = json::array();
  for (const char* t : bio_tag_names()) tags.push_back(t);
  meta["student_tokenizer"] = config.student->describe();
  meta["tag_set"] = tags.dump();
  meta["grades"] = grades.to_json().dump();
  meta["layout"] = "cross-encoder: [CLS] query [SEP] item_text [SEP]";
  meta["max_length"] = std::to_string(config.limits.max_length);
  meta["max_query_tokens"] = std::to_string(config.limits.max_query_tokens);
  meta["special_ids"] = json{{"cls", special.cls}, {"sep", special.sep}, {"pad", special.pad}}.dump();
  meta["attention_factors"] = config.factors.to_json().dump();
  meta["pairs"] = std::to_string(n);

  // teacher.jsonl first, targets second: targets.safetensors existing means the run finished.
  JsonlWriter jsonl(out_dir + "/teacher.jsonl");
  for (const TeacherRecord& r : records) jsonl.write(teacher_record_to_json(r, grades));
  jsonl.commit();
  save_safetensors(out_dir + "/targets.safetensors",
                   {{"input_ids", ids_t}, {"segment", seg_t}, {"bio", bio_t}, {"attn_factor", attn_t},
                    {"has_cot", cot_t}, {"grade_probs", probs_t}, {"score", score_t}},
                   meta);

  json hist = json::object();
  for (int64_t g = 0; g < k; ++g) hist[grades.labels[static_cast<size_t>(g)]] = pred_counts[static_cast<size_t>(g)];
  stats["pred"] = hist;
  stats["mean_score"] = n > 0 ? score_sum / static_cast<double>(n) : 0.0;
  write_file_atomic(out_dir + "/teacher-stats.json", stats.dump(2) + "\n");
  return stats;
}

}  // namespace ellm
