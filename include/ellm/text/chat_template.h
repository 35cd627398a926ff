#pragma once
// Chat templates: how a model family lays out a conversation in tokens, as data
// (configs/chat_templates/<family>.json), so that fine-tuning and inference produce
// exactly the sequence the family's real models were trained on:
//   qwen2 (ChatML): <|im_start|>{role}\n{content}<|im_end|>\n ... ; generation prompt
//                   "<|im_start|>assistant\n"; the response ends with <|im_end|>.
//   llama3: <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|> ...
// encode() returns the ids with a mask of the tokens the SFT loss is on: the
// assistant turns' content and their end-of-turn token, nothing else.
//
// Exactness: like Hugging Face's apply_chat_template, the conversation is rendered to one
// string and tokenized whole (add_special = false; the template writes BOS itself), so
// merges across a header/content boundary come out as the real tokenizer makes them. A
// token belongs to the response when its first byte lies in an assistant content or its
// end-of-turn marker. The template's markers (bos, end_of_turn) must be single tokens of
// the tokenizer; encode() checks that and names the missing one.
//
// File keys: name, bos, default_system (a system turn added when the conversation has
// none; "" = never), turn_prefix (with {role}), turn_suffix, end_of_turn (the marker in
// turn_suffix the loss covers), generation_prompt, trim_content (strip whitespace around
// each content, as LLaMA-3's template does), stop_tokens. Unknown keys are an error.
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
  // The rendered text (what encode tokenizes), optionally with the generation prompt.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

 private:
  std::string name_;
  std::string bos;                // text prepended once ("<|begin_of_text|>" or "")
  std::string turn_prefix;        // with {role}
  std::string turn_suffix;        // after content, e.g. "<|im_end|>\n"
  std::string generation_prompt;  // e.g. "<|im_start|>assistant\n"
  std::string default_system;     // system turn when none is given ("" = none)
  std::string end_of_turn;        // e.g. "<|im_end|>": in the response mask
  bool trim_content = false;
  std::vector<std::string> stop_tokens_;
  friend struct ChatTemplateAccess;
};

}  // namespace ellm
