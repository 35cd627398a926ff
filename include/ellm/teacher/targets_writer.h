#pragma once
// Writes the teacher stage's outputs (DESIGN §2) for pairs in input order:
//
//   teacher.jsonl        one TeacherRecord per pair (teacher/record.h), row i = pair i
//   targets.safetensors  row i = pair i, L = limits.max_length:
//     input_ids   [N,L] int32  cross-encoder layout and truncation of distill/student_inputs.h
//                              (StudentInputBuilder::cross), padded with the pad id
//     segment     [N,L] uint8  0 special/padding, 1 query, 2 item
//     bio         [N,L] uint8  BIO tag index (distill/targets.h bio_tag_names); 0 = O
//     attn_factor [N,L] f32    attention factors, each segment sums to 1; 0 on special/padding
//     has_cot     [N]   uint8  1 where the CoT parsed and the CoT targets (bio, attn_factor) are
//                              real; 0 for flagged pairs and --no-cot runs (bio all O, factors
//                              uniform): a student must not learn tags from those rows
//     grade_probs [N,K] f32    the teacher's distribution
//     score       [N]   f32    Σ p·value
//   __metadata__: teacher, student_tokenizer, tag_set (JSON list), grades (JSON), layout,
//     max_length, max_query_tokens, special_ids (JSON), attention_factors (JSON), plus what
//     the caller adds (no_cot, ...).
//   teacher-stats.json   counts: pairs, with_cot, flagged (by parse-error reason),
//     unlocated terms, truncated student inputs, mean score, pred histogram.
// Both files are written atomically.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/distill/student_inputs.h"
#include "ellm/distill/targets.h"
#include "ellm/teacher/record.h"

namespace ellm {

struct TargetsConfig {
  GradeScale grades;
  std::shared_ptr<const Tokenizer> student;
  InputLimits limits;  // max_length and max_query_tokens apply (cross-encoder layout)
  AttentionFactors factors;
  std::map<std::string, std::string> metadata;  // "teacher", ... (added to __metadata__)
};

// Returns the stats it wrote to teacher-stats.json.
json write_teacher_outputs(const std::string& out_dir, const std::vector<TeacherRecord>& records,
                           const TargetsConfig& config);

}  // namespace ellm
