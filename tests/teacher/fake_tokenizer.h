#pragma once
// A small deterministic tokenizer for tests, behind the real Tokenizer interface:
// like a byte-level BPE, a space joins the word after it (" exact" is one token);
// words longer than `piece` bytes are cut into pieces of `piece` bytes (so names
// and terms span several tokens); every other whitespace byte is its own token.
// The vocabulary grows as words are seen (ids are stable within one instance)
// until freeze(); after that unknown words are [UNK] (a model needs a fixed size).
// Specials: [PAD]=0 [CLS]=1 [SEP]=2 [UNK]=3 <eot>=4, then any given `markers`
// (e.g. "<|im_start|>"), which are matched in the text before anything else.
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ellm/text/tokenizer.h"

namespace ellm::test {

class FakeTokenizer : public Tokenizer {
 public:
  explicit FakeTokenizer(size_t piece = 100, std::vector<std::string> markers = {}) : piece_(piece) {
    markers_ = {"<eot>"};
    for (auto& m : markers) markers_.push_back(m);
    for (const char* s : {"[PAD]", "[CLS]", "[SEP]", "[UNK]"}) id_of(s);
    for (auto& m : markers_) id_of(m);
    num_special_ = static_cast<int64_t>(tokens_.size());
  }
  void freeze() { frozen_ = true; }
  Encoding encode(std::string_view text, bool add_special = false) const override {
    Encoding e;
    size_t i = 0;
    while (i < text.size()) {
      if (size_t m = marker_at(text, i)) {
        push(e, std::string(text.substr(i, m)), i, i + m);
        i += m;
        continue;
      }
      char c = text[i];
      if (c != ' ' && std::isspace(static_cast<unsigned char>(c))) {
        push(e, std::string(1, c), i, i + 1);
        ++i;
        continue;
      }
      size_t b = i;
      if (c == ' ') ++i;  // the space belongs to the next word
      size_t w = i;
      while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && !marker_at(text, i)) ++i;
      if (w == i) {  // a lone space
        push(e, " ", b, i);
        continue;
      }
      for (size_t p = w; p < i; p += piece_) {
        size_t end = std::min(i, p + piece_);
        size_t begin = p == w ? b : p;
        push(e, std::string(text.substr(begin, end - begin)), begin, end);
      }
    }
    (void)add_special;
    return e;
  }
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const override {
    std::string s;
    for (auto id : ids)
      if (!(skip_special && is_special(id))) s += token_bytes(id);
    return s;
  }
  std::string token_bytes(int64_t id) const override { return id_to_token(id); }
  int64_t vocab_size() const override {
    std::lock_guard<std::mutex> l(mu_);
    return static_cast<int64_t>(tokens_.size());
  }
  std::optional<int64_t> token_to_id(const std::string& token) const override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = ids_.find(token);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override {
    std::lock_guard<std::mutex> l(mu_);
    return tokens_.at(static_cast<size_t>(id));
  }
  bool is_special(int64_t id) const override { return id < num_special_; }
  std::optional<int64_t> bos_id() const override { return std::nullopt; }
  std::optional<int64_t> eos_id() const override { return 4; }
  std::optional<int64_t> pad_id() const override { return 0; }
  std::optional<int64_t> unk_id() const override { return 3; }
  std::string describe() const override { return "fake:piece=" + std::to_string(piece_); }

  int64_t id_of(const std::string& token) const {
    std::lock_guard<std::mutex> l(mu_);
    auto it = ids_.find(token);
    if (it != ids_.end()) return it->second;
    if (frozen_) return 3;
    int64_t id = static_cast<int64_t>(tokens_.size());
    ids_[token] = id;
    tokens_.push_back(token);
    return id;
  }

 private:
  void push(Encoding& e, const std::string& token, size_t b, size_t end) const {
    e.ids.push_back(id_of(token));
    e.offsets.emplace_back(b, end);
  }
  size_t marker_at(std::string_view text, size_t i) const {
    for (const auto& m : markers_)
      if (text.compare(i, m.size(), m) == 0) return m.size();
    return 0;
  }
  size_t piece_;
  std::vector<std::string> markers_;
  int64_t num_special_ = 0;
  bool frozen_ = false;
  mutable std::mutex mu_;
  mutable std::map<std::string, int64_t> ids_;
  mutable std::vector<std::string> tokens_;
};

}  // namespace ellm::test
