// BERT WordPiece: basic tokenizer (clean, CJK split, lower-case + accent strip, punctuation
// split) then greedy longest-match-first WordPiece, keeping each character's input span.
#include "ellm/text/wordpiece.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include <fstream>
#include <unordered_map>

#include "ellm/io/utf8.h"
#include "ellm/util/error.h"

namespace ellm {
namespace {

bool is_cjk(UChar32 c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
bool is_whitespace(UChar32 c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || u_charType(c) == U_SPACE_SEPARATOR;
}
bool is_control(UChar32 c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  auto t = u_charType(c);
  return t == U_CONTROL_CHAR || t == U_FORMAT_CHAR || t == U_SURROGATE || t == U_PRIVATE_USE_CHAR ||
         t == U_UNASSIGNED;
}
bool is_punctuation(UChar32 c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  auto t = u_charType(c);
  return t == U_DASH_PUNCTUATION || t == U_START_PUNCTUATION || t == U_END_PUNCTUATION ||
         t == U_CONNECTOR_PUNCTUATION || t == U_OTHER_PUNCTUATION || t == U_INITIAL_PUNCTUATION ||
         t == U_FINAL_PUNCTUATION;
}

// One normalised character with the input bytes it came from.
struct Char {
  UChar32 cp;
  size_t begin, end;
};

void append_cp(std::string& out, UChar32 c) { append_utf8(out, static_cast<char32_t>(c)); }

// Python's str.lower() then NFD with combining marks (Mn) dropped, for one character.
void lower_strip(UChar32 c, size_t b, size_t e, std::vector<Char>& out) {
  if (c < 0x80) {
    out.push_back({(c >= 'A' && c <= 'Z') ? c + 32 : c, b, e});
    return;
  }
  UErrorCode status = U_ZERO_ERROR;
  UChar src[2], lowered[8], decomposed[32];
  int32_t n = 0;
  U16_APPEND_UNSAFE(src, n, c);
  int32_t ln = u_strToLower(lowered, 8, src, n, "", &status);
  if (U_FAILURE(status)) {
    out.push_back({c, b, e});
    return;
  }
  status = U_ZERO_ERROR;
  const UNormalizer2* nfd = unorm2_getNFDInstance(&status);
  int32_t dn = unorm2_normalize(nfd, lowered, ln, decomposed, 32, &status);
  if (U_FAILURE(status)) {
    out.push_back({c, b, e});
    return;
  }
  for (int32_t i = 0; i < dn;) {
    UChar32 d;
    U16_NEXT(decomposed, i, dn, d);
    if (u_charType(d) == U_NON_SPACING_MARK) continue;
    out.push_back({d, b, e});
  }
}

class WordPieceTokenizer : public Tokenizer {
 public:
  WordPieceTokenizer(const std::string& path, const WordPieceOptions& o) : path_(path), o_(o) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("WordPiece vocab {}: cannot open", path);
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!is_valid_utf8(line)) fail("WordPiece vocab {}:{}: not valid UTF-8", path, n);
      // Duplicates keep their first id, as BERT's load_vocab effectively does for lookups.
      vocab_.emplace(line, static_cast<int64_t>(tokens_.size()));
      tokens_.push_back(line);
    }
    if (tokens_.empty()) fail("WordPiece vocab {}: empty", path);
    auto need = [&](const std::string& t) -> int64_t {
      auto it = vocab_.find(t);
      if (it == vocab_.end()) fail("WordPiece vocab {}: lacks the token {}", path, t);
      return it->second;
    };
    unk_ = need(o.unk);
    cls_ = need(o.cls);
    sep_ = need(o.sep);
    pad_ = vocab_.count(o.pad) ? vocab_[o.pad] : -1;
    mask_ = vocab_.count(o.mask) ? vocab_[o.mask] : -1;
    for (const auto& s : {o.unk, o.cls, o.sep, o.pad, o.mask})
      if (vocab_.count(s)) specials_.push_back(s);
    special_.assign(tokens_.size(), false);
    for (const auto& s : specials_) special_[static_cast<size_t>(vocab_[s])] = true;
  }

  Encoding encode(std::string_view text, bool add_special) const override {
    size_t bad = 0;
    if (!is_valid_utf8(text, &bad)) fail("{}: input is not valid UTF-8 (byte {})", describe(), bad);
    Encoding enc;
    if (add_special) push(enc, cls_, 0, 0);
    // Special tokens written in the text are matched first; the rest is tokenized between them.
    size_t pos = 0;
    while (pos < text.size()) {
      size_t best = std::string_view::npos, best_len = 0;
      for (const auto& s : specials_) {
        size_t at = text.find(s, pos);
        if (at != std::string_view::npos && (at < best || (at == best && s.size() > best_len))) {
          best = at;
          best_len = s.size();
        }
      }
      size_t end = best == std::string_view::npos ? text.size() : best;
      encode_plain(text, pos, end, enc);
      if (best == std::string_view::npos) break;
      push(enc, vocab_.at(std::string(text.substr(best, best_len))), best, best + best_len);
      pos = best + best_len;
    }
    if (add_special) push(enc, sep_, text.size(), text.size());
    return enc;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const override {
    std::string out;
    for (int64_t id : ids) {
      check_id(id);
      if (skip_special && special_[static_cast<size_t>(id)]) continue;
      const std::string& t = tokens_[static_cast<size_t>(id)];
      if (t.rfind("##", 0) == 0) {
        out += t.substr(2);
      } else {
        if (!out.empty()) out += ' ';
        out += t;
      }
    }
    // transformers' clean_up_tokenization: no space before these.
    static const std::vector<std::pair<std::string, std::string>> cleanup = {
        {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
        {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
    for (const auto& [from, to] : cleanup)
      for (size_t at = out.find(from); at != std::string::npos; at = out.find(from, at + to.size()))
        out.replace(at, from.size(), to);
    return out;
  }

  std::string token_bytes(int64_t id) const override {
    check_id(id);
    const std::string& t = tokens_[static_cast<size_t>(id)];
    if (t.rfind("##", 0) == 0) return t.substr(2);
    return " " + t;
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::optional<int64_t> token_to_id(const std::string& token) const override {
    auto it = vocab_.find(token);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override {
    check_id(id);
    return tokens_[static_cast<size_t>(id)];
  }
  bool is_special(int64_t id) const override {
    check_id(id);
    return special_[static_cast<size_t>(id)];
  }
  // BERT has no BOS/EOS; [CLS] and [SEP] play those parts.
  std::optional<int64_t> bos_id() const override { return cls_; }
  std::optional<int64_t> eos_id() const override { return sep_; }
  std::optional<int64_t> pad_id() const override { return pad_ >= 0 ? std::optional<int64_t>(pad_) : std::nullopt; }
  std::optional<int64_t> unk_id() const override { return unk_; }
  std::string describe() const override { return "wordpiece:" + path_; }

 private:
  static void push(Encoding& enc, int64_t id, size_t b, size_t e) {
    enc.ids.push_back(id);
    enc.offsets.emplace_back(b, e);
  }
  void check_id(int64_t id) const {
    if (id < 0 || id >= static_cast<int64_t>(tokens_.size()))
      fail("{}: token id {} out of range [0, {})", describe(), id, tokens_.size());
  }

  // Basic tokenizer over text[from, to), then WordPiece per word.
  void encode_plain(std::string_view text, size_t from, size_t to, Encoding& enc) const {
    std::vector<Char> word;
    auto flush = [&] {
      if (!word.empty()) wordpiece(word, enc);
      word.clear();
    };
    const auto* s = reinterpret_cast<const uint8_t*>(text.data());
    int32_t i = static_cast<int32_t>(from), end = static_cast<int32_t>(to);
    while (i < end) {
      size_t b = static_cast<size_t>(i);
      UChar32 c;
      U8_NEXT(s, i, end, c);
      size_t e = static_cast<size_t>(i);
      if (c < 0 || c == 0 || c == 0xFFFD || is_control(c)) continue;
      if (is_whitespace(c)) {
        flush();
        continue;
      }
      if (o_.tokenize_chinese_chars && is_cjk(c)) {
        flush();
        word.push_back({c, b, e});
        flush();
        continue;
      }
      std::vector<Char> norm;
      if (o_.lowercase)
        lower_strip(c, b, e, norm);
      else
        norm.push_back({c, b, e});
      for (const auto& ch : norm) {
        if (is_punctuation(ch.cp)) {
          flush();
          word.push_back(ch);
          flush();
        } else {
          word.push_back(ch);
        }
      }
    }
    flush();
  }

  void wordpiece(const std::vector<Char>& word, Encoding& enc) const {
    if (static_cast<int>(word.size()) > o_.max_input_chars_per_word) {
      push(enc, unk_, word.front().begin, word.back().end);
      return;
    }
    // UTF-8 of the word, with the byte position where each character starts.
    std::string bytes;
    std::vector<size_t> at;
    for (const auto& ch : word) {
      at.push_back(bytes.size());
      append_cp(bytes, ch.cp);
    }
    at.push_back(bytes.size());
    size_t mark = enc.ids.size();
    std::string piece;
    for (size_t start = 0; start < word.size();) {
      int64_t found = -1;
      size_t stop = word.size();
      for (; stop > start; --stop) {
        piece.assign(start > 0 ? "##" : "");
        piece.append(bytes, at[start], at[stop] - at[start]);
        auto it = vocab_.find(piece);
        if (it != vocab_.end()) {
          found = it->second;
          break;
        }
      }
      if (found < 0) {  // no piece fits: the whole word is [UNK]
        enc.ids.resize(mark);
        enc.offsets.resize(mark);
        push(enc, unk_, word.front().begin, word.back().end);
        return;
      }
      push(enc, found, word[start].begin, word[stop - 1].end);
      start = stop;
    }
  }

  std::string path_;
  WordPieceOptions o_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> specials_;
  std::vector<bool> special_;
  int64_t unk_ = -1, cls_ = -1, sep_ = -1, pad_ = -1, mask_ = -1;
};

}  // namespace

std::shared_ptr<Tokenizer> load_wordpiece(const std::string& vocab_path, const WordPieceOptions& options) {
  return std::make_shared<WordPieceTokenizer>(vocab_path, options);
}

}  // namespace ellm
