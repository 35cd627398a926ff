#pragma once
// The fine-tuned decoder as the teacher (issue 7): prompt → CoT → grade distribution.
//
// For each pair:
//   1. prompt: the teacher's prompt template (text/prompt.h render_chat) laid out by
//      the model family's chat template with the generation prompt (ChatTemplate),
//      exactly as `ellm finetune` trained it;
//   2. CoT: batched greedy generation (models/generate.h, KV cache, left padding)
//      until an end-of-turn token;
//   3. distribution: the generated text up to its conclusion line, followed by
//      "[conclusion] ", is re-scored teacher-forced and the grade names are read
//      there (teacher/grade_distribution.h). With no_cot the distribution is read
//      right after the prompt prefilled with "[conclusion] " (the ablation).
// The text before the grade is tokenised whole, as fine-tuning tokenised the
// conversation, so the grade tokens are those the teacher learnt to emit.
//
// It serves `ellm teacher` (TeacherModel) and `ellm serve` (ServeBackend).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ellm/models/decoder.h"
#include "ellm/serve/server.h"
#include "ellm/teacher/driver.h"
#include "ellm/text/chat_template.h"
#include "ellm/text/prompt.h"
#include "ellm/text/tokenizer.h"

namespace ellm {

struct DecoderTeacherOptions {
  std::string model_dir;
  std::string adapter_dir;      // optional LoRA adapter (PEFT layout) applied on top
  std::string prompt_template;  // empty: from the model dir's ellm_teacher.json, else the shipped default
  std::string chat_template;    // empty: from ellm_teacher.json, else by model_type (qwen2 → "qwen2", llama → "llama3")
  GradeScale grades;
  bool no_cot = false;
  int64_t max_new_tokens = 256;
  int64_t score_batch = 16;  // sequences per teacher-forced scoring forward
  torch::Dtype dtype = torch::kFloat32;
  torch::Device device = torch::kCPU;
};

class DecoderTeacher : public TeacherModel, public ServeBackend {
 public:
  // Loads model, tokenizer and templates from options.model_dir (+ adapter).
  explicit DecoderTeacher(DecoderTeacherOptions options);
  // Uses the given pieces (tests, benchmarks); options.model_dir is only a name.
  DecoderTeacher(DecoderTeacherOptions options, Decoder model, std::shared_ptr<Tokenizer> tok, ChatTemplate chat,
                 PromptTemplate prompt);

  // TeacherModel
  int64_t cost(const Pair& pair) const override;
  std::vector<TeacherOutput> run(const std::vector<Pair>& batch) override;
  bool generates_cot() const override { return !options_.no_cot; }

  // ServeBackend
  std::string model_name() const override;
  const GradeScale& grades() const override { return options_.grades; }
  std::vector<RelevanceAnswer> relevance(const std::vector<RelevanceQuery>& batch) override;
  std::vector<ChatAnswer> chat(const std::vector<ChatQuery>& batch) override;

  const Tokenizer& tokenizer() const { return *tok_; }
  std::string describe() const;  // model dir (+ adapter), chat and prompt templates

  // The pieces, for tests and benchmarks.
  std::vector<int64_t> prompt_ids(const Pair& pair) const;
  std::vector<std::string> generate_cots(const std::vector<Pair>& pairs);
  // cots[i] == nullptr: read the distribution right after the prompt (no CoT).
  std::vector<std::vector<double>> distributions(const std::vector<Pair>& pairs,
                                                 const std::vector<const std::string*>& cots);

 private:
  std::vector<std::vector<double>> token_logprobs(const std::vector<std::vector<int64_t>>& sequences,
                                                  const std::vector<std::vector<int64_t>>& wanted);
  std::vector<int64_t> stop_ids() const;

  DecoderTeacherOptions options_;
  Decoder model_{nullptr};
  std::shared_ptr<Tokenizer> tok_;
  ChatTemplate chat_;
  PromptTemplate prompt_;
  std::mutex mu_;  // one model call at a time (server routes run on their own threads)
};

// The grade scale a teacher was trained with: "grades" in the model dir's ellm_teacher.json
// (written by `ellm finetune`), else the default 3-grade scale.
GradeScale teacher_grades(const std::string& model_dir);

// The text of a generated CoT up to (not including) its conclusion line; when the
// text has none, all of it with a final newline. What the distribution is read after.
std::string cot_body(const std::string& generated);

}  // namespace ellm
