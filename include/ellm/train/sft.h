#pragma once
// Supervised fine-tuning of the decoder teacher (ELLM-rele, DESIGN §4) as a TrainTask:
// prompt (configs/prompts/, in the model family's chat format) → CoT + "[conclusion]
// <grade>" (or the conclusion line alone: the no-CoT ablation), loss on the response
// tokens only (the chat template's response mask, predicted from the token before).
//
// Annotations (annotations.jsonl from `ellm annotate`): a pair plus "cot" (a string, a
// list of lines, or an object with "text") and "grade" (label or index; default the
// pair's label). Records with "flagged": true are skipped; a CoT that does not parse is
// counted and dropped; so is an example longer than max_length tokens.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"
#include "ellm/models/decoder.h"
#include "ellm/models/lora.h"
#include "ellm/text/chat_template.h"
#include "ellm/text/prompt.h"
#include "ellm/text/tokenizer.h"
#include "ellm/train/trainer.h"

namespace ellm {

struct SftRecord {
  Pair pair;
  std::string target;  // the assistant turn
};

struct SftReadStats {
  int64_t read = 0, flagged = 0, unparsed = 0;
};

// Reads annotations; `cot` false makes targets the conclusion line only.
std::vector<SftRecord> read_sft_records(const std::string& path, const GradeScale& grades, bool cot,
                                        SftReadStats* stats = nullptr);

struct SftExample {
  std::string id;
  std::vector<int64_t> ids;
  std::vector<uint8_t> response_mask;  // 1 where the loss applies
  int64_t units = 0;                   // response tokens with a predecessor
};

// Tokenizes records with the prompt and chat templates. Examples over max_length tokens
// are dropped (counted in *dropped).
std::vector<SftExample> encode_sft(const std::vector<SftRecord>& records, const PromptTemplate& prompt,
                                   const ChatTemplate& chat, const Tokenizer& tok, const GradeScale& grades,
                                   int64_t max_length, int64_t* dropped = nullptr);

struct SftOptions {
  bool lora = true;
  LoraConfig lora_config;
  bool merge_final = true;  // final/ = merged HF model; false: base + PEFT adapter
  bool gradient_checkpointing = false;
  uint64_t seed = 0;
  int64_t pad_id = 0;
  int64_t eval_batch = 8;
  json teacher_info = json::object();                 // written to final/ellm_teacher.json
  std::vector<std::pair<std::string, std::string>> files_to_copy;  // (source, name in final/): tokenizer, prompt
};

class SftTask : public TrainTask {
 public:
  SftTask(Decoder model, std::vector<SftExample> train, std::vector<SftExample> eval, SftOptions options);

  int64_t num_examples() const override { return static_cast<int64_t>(train_.size()); }
  int64_t example_length(int64_t i) const override { return static_cast<int64_t>(train_[i].ids.size()); }
  double count_units(const std::vector<int64_t>& examples) const override;
  MicroBatchLoss loss(const std::vector<int64_t>& examples) override;
  std::vector<std::pair<std::string, at::Tensor>> trainable_parameters() override;
  void set_training(bool training) override;
  EvalResult evaluate() override;
  void save_model(const std::string& dir) override;
  std::string describe(const std::vector<int64_t>& examples) const override;

  Decoder& model() { return model_; }
  // Summed token loss and token count of examples (no grad), for eval and tests.
  std::pair<double, int64_t> loss_of(const std::vector<SftExample>& examples, int64_t batch);

 private:
  // Padded batch → summed cross-entropy over response tokens.
  at::Tensor batch_loss(const std::vector<const SftExample*>& batch, int64_t* tokens);

  Decoder model_;
  std::vector<SftExample> train_, eval_;
  SftOptions options_;
};

}  // namespace ellm
