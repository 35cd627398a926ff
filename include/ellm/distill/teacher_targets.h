#pragma once
// Reading the teacher stage's output directory (DESIGN §2) for distillation.
//
//   DIR/teacher.jsonl        one record per pair: {"id", "cot", "grade_probs", "score", "pred", ...}
//   DIR/targets.safetensors  input_ids [N,L] int32, bio [N,L] uint8, attn_factor [N,L] f32,
//                            grade_probs [N,K] f32, score [N] f32
//
// Matching. Row r of every tensor belongs to line r of teacher.jsonl (the
// teacher writes both in the same order); pairs are matched to rows by the
// record's "id" (a pair id appearing twice is an error). Pairs the teacher did
// not label get no teacher targets (only L_ce applies to them).
//
// CoT targets. A row carries CoT targets (BIO tags, attention factors) when the
// file's optional has_cot [N] uint8 tensor says so — or, without that tensor,
// when its record has a non-empty "cot" and is not flagged ("cot_ok": false or
// "targets": false) — and its attn_factor row is not all zero. Other rows still
// carry grade_probs and score. Other tensors (e.g. segment) are ignored.
//
// The rows are on the cross-encoder layout of the student's tokenizer
// (distill/student_inputs.h) with L = max_length; a student checks its own
// encoding against input_ids before it uses bio or attn_factor, so targets built
// for another tokenizer or length are refused with the pair and token named.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace ellm {

struct TeacherTargets {
  std::string dir;
  std::vector<std::string> ids;      // pair id per row
  std::map<std::string, int64_t> row_of;
  std::vector<bool> has_cot;         // per row
  torch::Tensor input_ids;           // [N,L] int64
  torch::Tensor bio;                 // [N,L] int64
  torch::Tensor attn_factor;         // [N,L] f32
  torch::Tensor grade_probs;         // [N,K] f32
  torch::Tensor score;               // [N] f32
  std::map<std::string, std::string> metadata;

  int64_t rows() const { return static_cast<int64_t>(ids.size()); }
  int64_t length() const { return input_ids.size(1); }
  int64_t num_grades() const { return grade_probs.size(1); }
  // Row of a pair id, or −1.
  int64_t row(const std::string& pair_id) const;
};

// Reads and validates DIR (shapes, dtypes, row counts, probabilities summing to 1).
// `num_grades`: the dataset's K, checked against grade_probs.
TeacherTargets read_teacher_targets(const std::string& dir, int num_grades);

}  // namespace ellm
