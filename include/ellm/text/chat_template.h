#pragma once
// Chat templates: how a model family lays out a conversation in tokens, as data
// (configs/chat_templates/<family>.json), so that fine-tuning and inference produce
// exactly the sequence the family's real models were trained on:
//   qwen2 (ChatML): <|im_start|>{role}\n{content}<|im_end|>\n ... ; generation prompt
//                   "<|im_start|>assistant\n"; the response ends with <|im_end|>.
//   llama3: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|> ...
// encode() returns the ids with a mask of the tokens the SFT loss is on: the
// assistant turns' content and their end-of-turn token, nothing else.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ellm/text/prompt.h"
#include "ellm/text/tokenizer.h"

namespace ellm {

struct ChatEncoding {
  std::vector<int64_t> ids;
  std::vector<uint8_t> response_mask;  // 1 where the SFT loss applies
};

class ChatTemplate {
 public:
  // `name_or_path`: "qwen2", "llama3", ... (configs/chat_templates/<name>.json) or a file.
  static ChatTemplate load(const std::string& name_or_path);

  // The whole conversation (the last message is usually the assistant's answer).
  ChatEncoding encode(const std::vector<ChatMessage>& messages, const Tokenizer& tok) const;
  // The conversation followed by the generation prompt (the assistant header): what
  // the teacher is given at inference.
  std::vector<int64_t> encode_prompt(const std::vector<ChatMessage>& messages, const Tokenizer& tok) const;
  // Token strings that end an assistant turn (e.g. "<|im_end|>"): generation stops there.
  const std::vector<std::string>& stop_tokens() const { return stop_tokens_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::string bos;                // text prepended once ("<|begin_of_text|>" or "")
  std::string turn_prefix;        // with {role}
  std::string turn_suffix;        // after content, e.g. "<|im_end|>\n"
  std::string generation_prompt;  // e.g. "<|im_start|>assistant\n"
  std::vector<std::string> stop_tokens_;
  friend struct ChatTemplateAccess;
};

}  // namespace ellm
