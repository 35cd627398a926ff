#pragma once
// What a student reads, token by token, and which bytes of the pair each token
// covers (the TokenAlignment that distill/targets.h puts CoT targets on).
//
// Layouts (item text = item_text(item), text/item_text.h):
//   cross-encoder:  [CLS] query [SEP] item [SEP]   token types 0 … 0 | 1 … 1
//   two-tower:      query tower [CLS] query [SEP], item tower [CLS] item [SEP]
//                   (token types all 0)
// The teacher stage builds its targets.safetensors rows on the cross-encoder
// layout (input_ids [N, max_length]); a two-tower student takes the query- and
// item-segment rows of those targets onto its towers (distill/teacher_targets.h).
//
// Special tokens. [CLS]/[SEP]/[PAD] are looked up by those names (BERT vocab);
// otherwise the tokenizer's BOS stands for [CLS], EOS for [SEP] and its pad id
// (else its unk id, else 0) for padding — padded positions are masked, so the pad id
// only has to be a valid id. A tokenizer with neither [CLS] nor BOS (or neither
// [SEP] nor EOS) is an error.
//
// Truncation (a contract: the teacher stage's targets rows are built with the
// same rule, and distillation checks the ids match):
//  - query and item are tokenized separately without special tokens, then
//  - cross-encoder, room = max_length − 3: the query keeps its first
//    min(max_query_tokens, room − 1) tokens (queries are short; the item needs
//    the room), the item its first room − (query tokens kept);
//  - two-tower: each side keeps its first max_query_length − 2 /
//    max_item_length − 2 tokens.
// A token the tokenizer marks special (or that covers no bytes) is in segment
// `special` with span [0,0), so it never carries a CoT target.
// Truncation drops whole tokens; a token's span is never cut.
// Rows are not padded here; collate() pads a batch to its longest row.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "ellm/distill/targets.h"
#include "ellm/text/tokenizer.h"

namespace ellm {

struct InputLimits {
  int64_t max_length = 64;        // cross-encoder, including its 3 special tokens
  int64_t max_query_length = 16;  // two-tower query tower, including [CLS] and [SEP]
  int64_t max_item_length = 48;   // two-tower item tower, including [CLS] and [SEP]
  int64_t max_query_tokens = 32;  // cross-encoder: query tokens kept at most
};

struct SpecialIds {
  int64_t cls = 0, sep = 0, pad = 0;
};
SpecialIds student_special_ids(const Tokenizer& tokenizer);

// One tokenized student input row.
struct StudentTokens {
  std::vector<int64_t> ids;
  std::vector<int64_t> token_types;
  TokenAlignment alignment;  // per token: segment and byte span in the query or item text
  size_t size() const { return ids.size(); }
};

class StudentInputBuilder {
 public:
  StudentInputBuilder(std::shared_ptr<const Tokenizer> tokenizer, InputLimits limits);

  StudentTokens cross(const std::string& query, const std::string& item_text) const;
  StudentTokens query_tower(const std::string& query) const;
  StudentTokens item_tower(const std::string& item_text) const;

  const InputLimits& limits() const { return limits_; }
  const SpecialIds& special() const { return special_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  InputLimits limits_;
  SpecialIds special_;
};

// A padded batch of rows, all [B,T] int64: ids, token types, mask (1 token,
// 0 padding) and content (1 on query/item tokens, 0 on special tokens and padding).
struct TokenBatch {
  torch::Tensor ids, types, mask, content;
};
TokenBatch collate(const std::vector<const StudentTokens*>& rows, int64_t pad_id);

}  // namespace ellm
