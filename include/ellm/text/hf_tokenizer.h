#pragma once
// Hugging Face tokenizer.json backend (text/tokenizer.h), byte-level BPE as Qwen2/Qwen3 and
// LLaMA-3 ship it, reproducing the `tokenizers` library token for token:
//   added tokens (special or not) matched first (leftmost, longest; lstrip/rstrip/single_word)
//   → normalizer (NFC via ICU, Sequence, or none)
//   → pre-tokenizer (Split with a regex, run by PCRE2 in UTF+UCP mode with JIT; ByteLevel,
//     with or without the GPT-2 regex; Sequence)
//   → BPE by merge rank (ignore_merges honoured), with a per-word cache
//   → post-processor (TemplateProcessing, ByteLevel, Sequence) when add_special.
// decode(): ByteLevel decoder; added tokens as their text.
// Any other component or option (WordPiece/Unigram models, BPE dropout, byte_fallback, a
// Metaspace pre-tokenizer, ...) is refused at load time with an error naming it, so that a
// tokenizer we do not reproduce exactly is never used silently.
//
// Offsets are byte offsets into the input. A token that covers part of a multi-byte
// character covers that character's bytes it holds; NFC changes map to the input span that
// was normalised.
#include <nlohmann/json.hpp>

#include <memory>
#include <string>

#include "ellm/text/tokenizer.h"

namespace ellm {

std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& tokenizer_json_path);
// From parsed JSON; `source` names it in messages.
std::shared_ptr<Tokenizer> hf_tokenizer_from_json(const nlohmann::json& j, const std::string& source);

}  // namespace ellm
