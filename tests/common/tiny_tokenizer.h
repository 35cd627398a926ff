#pragma once
// A word-level tokenizer for tests: lower-cased ASCII words and single
// punctuation bytes, byte offsets into the input, BERT-style specials.
// Unknown words map to [UNK]. Deterministic and dependency-free, so model and
// distillation tests do not depend on a trained SentencePiece model.
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "ellm/text/tokenizer.h"

namespace ellm::test_support {

class TinyTokenizer : public Tokenizer {
 public:
  explicit TinyTokenizer(const std::vector<std::string>& words, std::string path = "tiny:/dev/null") : path_(std::move(path)) {
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]"}) add(s);
    for (const auto& w : words) add(w);
  }
  Encoding encode(std::string_view text, bool add_special = false) const override {
    Encoding e;
    if (add_special) e.ids.push_back(2), e.offsets.emplace_back(0, 0);
    size_t i = 0;
    while (i < text.size()) {
      unsigned char c = static_cast<unsigned char>(text[i]);
      if (std::isspace(c)) { ++i; continue; }
      size_t j = i + 1;
      if (std::isalnum(c)) while (j < text.size() && std::isalnum(static_cast<unsigned char>(text[j]))) ++j;
      std::string w(text.substr(i, j - i));
      for (auto& ch : w) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      auto it = ids_.find(w);
      e.ids.push_back(it == ids_.end() ? 1 : it->second);
      e.offsets.emplace_back(i, j);
      i = j;
    }
    if (add_special) e.ids.push_back(3), e.offsets.emplace_back(text.size(), text.size());
    return e;
  }
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override {
    std::string s;
    for (auto id : ids) {
      if (skip_special && is_special(id)) continue;
      if (!s.empty()) s += ' ';
      s += vocab_.at(id);
    }
    return s;
  }
  std::string token_bytes(int64_t id) const override { return vocab_.at(id); }
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  std::optional<int64_t> token_to_id(const std::string& t) const override {
    auto it = ids_.find(t);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override { return vocab_.at(id); }
  bool is_special(int64_t id) const override { return id < 4 && id != 1; }  // [UNK] is ordinary text
  std::optional<int64_t> bos_id() const override { return std::nullopt; }
  std::optional<int64_t> eos_id() const override { return std::nullopt; }
  std::optional<int64_t> pad_id() const override { return 0; }
  std::optional<int64_t> unk_id() const override { return 1; }
  std::string describe() const override { return path_; }

 private:
  void add(const std::string& w) {
    if (ids_.count(w)) return;
    ids_[w] = static_cast<int64_t>(vocab_.size());
    vocab_.push_back(w);
  }
  std::string path_;
  std::vector<std::string> vocab_;
  std::map<std::string, int64_t> ids_;
};

}  // namespace ellm::test_support
