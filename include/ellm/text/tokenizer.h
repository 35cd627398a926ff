#pragma once
// One tokenizer interface for every model in ellm (DESIGN §3):
//   - Hugging Face tokenizer.json, byte-level BPE (Qwen2/Qwen3, LLaMA-3): the teacher's;
//   - SentencePiece .model (unigram or BPE; trained by `ellm tokenizer train`): the
//     tiny teacher's and the from-scratch students';
//   - BERT WordPiece vocab.txt: a real pretrained BERT student's.
// Offsets are byte offsets into the input text: they are how CoT spans (text/cot.h,
// byte offsets too) map onto tokens (distill/targets.h).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ellm {

struct Encoding {
  std::vector<int64_t> ids;
  // Per token: [begin, end) bytes of the input it came from. Special tokens that
  // were inserted (not matched in the text) get [p, p) at their position.
  std::vector<std::pair<size_t, size_t>> offsets;
  size_t size() const { return ids.size(); }
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // `add_special`: add what the tokenizer's own post-processor adds (BOS for
  // LLaMA-3 / SentencePiece models configured so, [CLS] … [SEP] for BERT).
  // Special tokens written in the text (e.g. "<|im_start|>") are matched as such.
  virtual Encoding encode(std::string_view text, bool add_special = false) const = 0;
  // Ids → text. `skip_special` drops control tokens (bos/eos/pad/added specials).
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const = 0;
  // The bytes of one token as it contributes to decoded text (byte-level BPE tokens
  // may hold partial UTF-8 sequences): what StreamDecoder concatenates.
  virtual std::string token_bytes(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  // Token string (as in the vocab file) ↔ id.
  virtual std::optional<int64_t> token_to_id(const std::string& token) const = 0;
  virtual std::string id_to_token(int64_t id) const = 0;
  virtual bool is_special(int64_t id) const = 0;
  virtual std::optional<int64_t> bos_id() const = 0;
  virtual std::optional<int64_t> eos_id() const = 0;
  virtual std::optional<int64_t> pad_id() const = 0;
  virtual std::optional<int64_t> unk_id() const = 0;
  // "hf-bpe:/path/tokenizer.json", "sentencepiece:/path/x.model", "wordpiece:/path/vocab.txt".
  virtual std::string describe() const = 0;
};

// PATH: a tokenizer.json, a SentencePiece .model, a BERT vocab.txt, or a directory
// holding one of them (looked for in that order). Errors name the file and the
// unsupported feature.
std::shared_ptr<Tokenizer> load_tokenizer(const std::string& path);

// Streaming decode: feed ids one at a time, get the text that became complete
// (partial UTF-8 sequences are held back until their last byte arrives).
class StreamDecoder {
 public:
  explicit StreamDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special = true);
  std::string push(int64_t id);
  std::string finish();  // whatever is left (invalid trailing bytes become U+FFFD)

 private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  std::string pending_;
};

}  // namespace ellm
