// Hugging Face tokenizer.json, byte-level BPE (Qwen2/Qwen3, LLaMA-3, GPT-2 style).
// The pipeline and what is refused are in include/ellm/text/hf_tokenizer.h.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ellm/text/hf_tokenizer.h"

#include <pcre2.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "ellm/io/utf8.h"
#include "ellm/util/error.h"

namespace ellm {
namespace {

using json = nlohmann::json;

// ---- byte-level alphabet (GPT-2): byte ↔ printable code point -------------------
struct ByteAlphabet {
  std::array<char32_t, 256> to_cp{};
  std::unordered_map<char32_t, uint8_t> to_byte;
  ByteAlphabet() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + n++);
      to_byte[to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteAlphabet& alphabet() {
  static ByteAlphabet a;
  return a;
}

// A vocab string in the byte-level alphabet → its raw bytes (nullopt if not in the alphabet).
std::optional<std::string> unmap_bytes(const std::string& s) {
  std::string out;
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  int32_t i = 0, n = static_cast<int32_t>(s.size());
  while (i < n) {
    UChar32 c;
    U8_NEXT(p, i, n, c);
    if (c < 0) return std::nullopt;
    auto it = alphabet().to_byte.find(static_cast<char32_t>(c));
    if (it == alphabet().to_byte.end()) return std::nullopt;
    out.push_back(static_cast<char>(it->second));
  }
  return out;
}

// ---- regex (PCRE2, UTF + UCP, JIT) -------------------------------------------------
// \s in the Rust `tokenizers` (Oniguruma) is Unicode White_Space; PCRE2's UCP \s differs
// at the edges (U+0085), so it is spelled out.
const char* kWhiteSpace = "\\t-\\r\\x{20}\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}"
                          "\\x{205F}\\x{3000}";

std::string translate_pattern(const std::string& p, const std::string& where) {
  std::string out;
  int depth = 0;  // inside a character class
  for (size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      char d = p[i + 1];
      if (d == 's') {
        out += depth ? std::string(kWhiteSpace) : "[" + std::string(kWhiteSpace) + "]";
      } else if (d == 'S') {
        if (depth) fail("{}: \\S inside a character class is not supported", where);
        out += "[^" + std::string(kWhiteSpace) + "]";
      } else {
        out += c;
        out += d;
      }
      ++i;
      continue;
    }
    if (c == '[') ++depth;
    if (c == ']' && depth) --depth;
    out += c;
  }
  return out;
}

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE at = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP, &err,
                          &at, nullptr);
    if (!code_) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      fail("{}: regex does not compile at {}: {} ({})", where, at, reinterpret_cast<char*>(msg), pattern);
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls fn(begin, end) for each match in s[0, n) (byte offsets), left to right.
  template <typename Fn>
  void for_each_match(const char* s, size_t n, Fn fn) const {
    thread_local pcre2_match_data* md = pcre2_match_data_create(4, nullptr);
    size_t pos = 0;
    while (pos <= n) {
      int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s), n, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) return;
      if (rc < 0) fail("regex match failed (PCRE2 error {})", rc);
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t b = ov[0], e = ov[1];
      if (e == b) {  // empty match: step over one character
        if (b >= n) return;
        pos = b + utf8_sequence_length(static_cast<unsigned char>(s[b]));
        continue;
      }
      fn(b, e);
      pos = e;
    }
  }

 private:
  pcre2_code* code_ = nullptr;
};

// ---- pipeline parts ----------------------------------------------------------------
struct AddedToken {
  int64_t id;
  std::string content;
  bool single_word, lstrip, rstrip, special;
};

enum class SplitBehavior { Isolated, Removed, MergedWithPrevious, MergedWithNext };

struct SplitStep {
  std::shared_ptr<Regex> regex;
  SplitBehavior behavior;
};

struct TemplatePiece {
  bool is_sequence;  // $A; otherwise a special token's ids
  std::vector<int64_t> ids;
};

bool get_bool(const json& j, const char* key, bool dflt) {
  if (!j.contains(key) || j[key].is_null()) return dflt;
  return j[key].get<bool>();
}

class HfTokenizer : public Tokenizer {
 public:
  HfTokenizer(const json& j, const std::string& source) : source_(source) {
    try {
      load(j);
    } catch (const json::exception& e) {
      fail("{}: malformed tokenizer.json ({})", source, e.what());
    }
  }

  Encoding encode(std::string_view text, bool add_special) const override {
    size_t bad = 0;
    if (!is_valid_utf8(text, &bad)) fail("{}: input is not valid UTF-8 (byte {})", describe(), bad);
    Encoding enc;
    enc.ids.reserve(text.size() / 3 + 4);
    enc.offsets.reserve(text.size() / 3 + 4);
    if (add_special) add_template(enc, true, 0);
    size_t pos = 0;
    while (pos < text.size()) {
      size_t mb = 0, me = 0;
      const AddedToken* t = next_added(text, pos, mb, me);
      size_t seg_end = t ? mb : text.size();
      encode_segment(text, pos, seg_end, enc);
      if (!t) break;
      enc.ids.push_back(t->id);
      enc.offsets.emplace_back(mb, me);
      pos = me;
    }
    if (add_special) add_template(enc, false, text.size());
    return enc;
  }

  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const override {
    std::string raw;
    for (int64_t id : ids) {
      check_id(id);
      if (skip_special && special_[static_cast<size_t>(id)]) continue;
      raw += bytes_[static_cast<size_t>(id)];
    }
    return replace_invalid_utf8(raw);
  }
  std::string token_bytes(int64_t id) const override {
    check_id(id);
    return bytes_[static_cast<size_t>(id)];
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  std::optional<int64_t> token_to_id(const std::string& token) const override {
    auto it = token_ids_.find(token);
    if (it == token_ids_.end()) return std::nullopt;
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
  std::optional<int64_t> bos_id() const override { return bos_; }
  std::optional<int64_t> eos_id() const override { return eos_; }
  std::optional<int64_t> pad_id() const override { return pad_; }
  std::optional<int64_t> unk_id() const override { return unk_; }
  std::string describe() const override { return "hf-bpe:" + source_; }

  // bos/eos/pad/unk from tokenizer_config.json next to the file (HF keeps them there).
  void read_config(const std::filesystem::path& cfg) {
    if (!std::filesystem::exists(cfg)) return;
    std::ifstream in(cfg);
    json c = json::parse(in, nullptr, false);
    if (c.is_discarded() || !c.is_object()) fail("{}: not valid JSON", cfg.string());
    auto token = [&](const char* key, std::optional<int64_t>& out) {
      if (!c.contains(key) || c[key].is_null()) return;
      std::string s = c[key].is_string() ? c[key].get<std::string>()
                      : c[key].is_object() && c[key].contains("content") ? c[key]["content"].get<std::string>()
                                                                          : "";
      if (s.empty()) return;
      auto id = token_to_id(s);
      if (!id) fail("{}: {} '{}' is not a token of {}", cfg.string(), key, s, source_);
      out = *id;
    };
    token("bos_token", bos_);
    token("eos_token", eos_);
    token("pad_token", pad_);
    token("unk_token", unk_);
  }

 private:
  void check_id(int64_t id) const {
    if (id < 0 || id >= static_cast<int64_t>(tokens_.size()))
      fail("{}: token id {} out of range [0, {})", describe(), id, tokens_.size());
  }
  [[noreturn]] void unsupported(const std::string& what) const {
    fail("{}: unsupported tokenizer.json feature: {} (ellm reproduces byte-level BPE tokenizers such as Qwen2/3 "
         "and LLaMA-3 exactly, and refuses anything it would get wrong)",
         source_, what);
  }

  void load(const json& j) {
    if (!j.is_object()) fail("{}: not a JSON object", source_);
    const json& model = j.at("model");
    std::string type = model.value("type", "BPE");
    if (type != "BPE") unsupported("model type " + type);
    if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
      unsupported("BPE dropout");
    if (get_bool(model, "byte_fallback", false)) unsupported("BPE byte_fallback");
    for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
      if (model.contains(k) && !model[k].is_null() && !model[k].get<std::string>().empty())
        unsupported(std::string("BPE ") + k);
    ignore_merges_ = get_bool(model, "ignore_merges", false);
    if (j.contains("truncation") && !j["truncation"].is_null()) unsupported("truncation (truncate outside)");
    if (j.contains("padding") && !j["padding"].is_null()) unsupported("padding (pad outside)");

    // Vocabulary: token string → id; raw bytes per id.
    const json& vocab = model.at("vocab");
    if (!vocab.is_object()) fail("{}: model.vocab must be an object", source_);
    int64_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max(max_id, it.value().get<int64_t>());
    for (const auto& a : j.value("added_tokens", json::array())) max_id = std::max(max_id, a.at("id").get<int64_t>());
    tokens_.assign(static_cast<size_t>(max_id + 1), "");
    bytes_.assign(static_cast<size_t>(max_id + 1), "");
    special_.assign(static_cast<size_t>(max_id + 1), false);
    raw_ids_.reserve(vocab.size() * 2);
    token_ids_.reserve(vocab.size() * 2);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      int64_t id = it.value().get<int64_t>();
      if (id < 0) fail("{}: negative id for token '{}'", source_, it.key());
      tokens_[static_cast<size_t>(id)] = it.key();
      token_ids_[it.key()] = id;
      auto raw = unmap_bytes(it.key());
      if (!raw) fail("{}: vocab token '{}' is not in the byte-level alphabet", source_, it.key());
      bytes_[static_cast<size_t>(id)] = *raw;
      raw_ids_[*raw] = id;
    }
    byte_ids_.fill(-1);
    for (int b = 0; b < 256; ++b) {
      auto it = raw_ids_.find(std::string(1, static_cast<char>(b)));
      if (it != raw_ids_.end()) byte_ids_[b] = static_cast<int32_t>(it->second);
    }
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      auto u = model["unk_token"].get<std::string>();
      if (token_ids_.count(u)) unk_ = token_ids_[u];
    }

    // Merges: "a b" strings or [a, b] pairs, rank = position.
    const json& merges = model.at("merges");
    merges_.reserve(merges.size() * 2);
    for (size_t r = 0; r < merges.size(); ++r) {
      std::string a, b;
      if (merges[r].is_string()) {
        auto s = merges[r].get<std::string>();
        auto sp = s.find(' ');
        if (sp == std::string::npos) fail("{}: merge {} '{}' is not 'a b'", source_, r, s);
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else {
        a = merges[r].at(0).get<std::string>();
        b = merges[r].at(1).get<std::string>();
      }
      auto ia = token_ids_.find(a), ib = token_ids_.find(b), im = token_ids_.find(a + b);
      if (ia == token_ids_.end() || ib == token_ids_.end() || im == token_ids_.end())
        fail("{}: merge {} ('{}' '{}') uses a token missing from the vocab", source_, r, a, b);
      merges_.emplace(key(ia->second, ib->second), std::make_pair(static_cast<int32_t>(r),
                                                                  static_cast<int32_t>(im->second)));
    }

    // Added tokens.
    for (const auto& a : j.value("added_tokens", json::array())) {
      AddedToken t{a.at("id").get<int64_t>(), a.at("content").get<std::string>(), get_bool(a, "single_word", false),
                   get_bool(a, "lstrip", false), get_bool(a, "rstrip", false), get_bool(a, "special", false)};
      if (t.content.empty()) fail("{}: added token {} has empty content", source_, t.id);
      tokens_[static_cast<size_t>(t.id)] = t.content;
      token_ids_[t.content] = t.id;
      bytes_[static_cast<size_t>(t.id)] = t.content;
      special_[static_cast<size_t>(t.id)] = t.special;
      added_.push_back(t);
    }
    for (size_t i = 0; i < added_.size(); ++i)
      added_by_first_[static_cast<unsigned char>(added_[i].content[0])].push_back(i);
    for (auto& [first, list] : added_by_first_)
      std::sort(list.begin(), list.end(),
                [&](size_t x, size_t y) { return added_[x].content.size() > added_[y].content.size(); });

    load_normalizer(j.contains("normalizer") ? j["normalizer"] : json());
    bool byte_level = false;
    load_pre_tokenizer(j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json(), byte_level);
    if (!byte_level) unsupported("a pre_tokenizer without ByteLevel (only byte-level BPE is reproduced)");
    load_post_processor(j.contains("post_processor") ? j["post_processor"] : json());
    load_decoder(j.contains("decoder") ? j["decoder"] : json());
    for (int b = 0; b < 256; ++b)
      if (byte_ids_[b] < 0) fail("{}: byte-level vocab lacks the token for byte 0x{:02X}", source_, b);

    // Defaults when there is no tokenizer_config.json.
    for (const char* name : {"<|begin_of_text|>"})
      if (token_ids_.count(name)) bos_ = token_ids_[name];
    for (const char* name : {"<|end_of_text|>", "<|endoftext|>"})
      if (token_ids_.count(name)) {
        eos_ = token_ids_[name];
        break;
      }
  }

  void load_normalizer(const json& n) {
    if (n.is_null()) return;
    std::string type = n.at("type").get<std::string>();
    if (type == "NFC") {
      nfc_ = true;
    } else if (type == "Sequence") {
      for (const auto& s : n.at("normalizers")) load_normalizer(s);
    } else {
      unsupported("normalizer " + type);
    }
  }

  void load_pre_tokenizer(const json& p, bool& byte_level) {
    if (p.is_null()) return;
    std::string type = p.at("type").get<std::string>();
    if (type == "Sequence") {
      for (const auto& s : p.at("pretokenizers")) load_pre_tokenizer(s, byte_level);
    } else if (type == "Split") {
      if (get_bool(p, "invert", false)) unsupported("Split with invert: true");
      std::string pattern;
      const json& pat = p.at("pattern");
      if (pat.contains("Regex")) {
        pattern = translate_pattern(pat["Regex"].get<std::string>(), source_);
      } else if (pat.contains("String")) {
        pattern = "\\Q" + pat["String"].get<std::string>() + "\\E";
      } else {
        unsupported("Split pattern " + pat.dump());
      }
      std::string b = p.at("behavior").get<std::string>();
      SplitBehavior behavior;
      if (b == "Isolated") behavior = SplitBehavior::Isolated;
      else if (b == "Removed") behavior = SplitBehavior::Removed;
      else if (b == "MergedWithPrevious") behavior = SplitBehavior::MergedWithPrevious;
      else if (b == "MergedWithNext") behavior = SplitBehavior::MergedWithNext;
      else unsupported("Split behavior " + b);
      splits_.push_back({std::make_shared<Regex>(pattern, source_ + " pre_tokenizer"), behavior});
    } else if (type == "ByteLevel") {
      if (byte_level) unsupported("two ByteLevel pre-tokenizers");
      if (get_bool(p, "add_prefix_space", false)) unsupported("ByteLevel pre-tokenizer with add_prefix_space: true");
      byte_level = true;
      if (get_bool(p, "use_regex", true))
        splits_.push_back({std::make_shared<Regex>(
                               translate_pattern("'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|"
                                                 "\\s+(?!\\S)|\\s+",
                                                 source_),
                               source_ + " ByteLevel"),
                           SplitBehavior::Isolated});
    } else {
      unsupported("pre_tokenizer " + type);
    }
  }

  void load_post_processor(const json& p) {
    if (p.is_null()) return;
    std::string type = p.at("type").get<std::string>();
    if (type == "ByteLevel") return;  // offsets only; ours stay untrimmed byte spans
    if (type == "Sequence") {
      for (const auto& s : p.at("processors")) load_post_processor(s);
      return;
    }
    if (type != "TemplateProcessing") unsupported("post_processor " + type);
    const json& specials = p.at("special_tokens");
    bool seen_sequence = false;
    for (const auto& item : p.at("single")) {
      if (item.contains("Sequence")) {
        if (item["Sequence"].at("id").get<std::string>() != "A") unsupported("TemplateProcessing single with $B");
        seen_sequence = true;
        continue;
      }
      std::string name = item.at("SpecialToken").at("id").get<std::string>();
      if (!specials.contains(name)) fail("{}: post_processor names special token '{}' without defining it", source_, name);
      std::vector<int64_t> ids = specials[name].at("ids").get<std::vector<int64_t>>();
      for (auto id : ids)
        if (id < 0 || id >= static_cast<int64_t>(tokens_.size()))
          fail("{}: post_processor token '{}' has id {} outside the vocab", source_, name, id);
      (seen_sequence ? template_after_ : template_before_).insert((seen_sequence ? template_after_ : template_before_).end(),
                                                                  ids.begin(), ids.end());
    }
  }

  void load_decoder(const json& d) {
    if (d.is_null()) unsupported("a missing decoder (byte-level BPE needs the ByteLevel decoder)");
    std::string type = d.at("type").get<std::string>();
    if (type == "ByteLevel") return;
    if (type == "Sequence") {
      for (const auto& s : d.at("decoders")) load_decoder(s);
      return;
    }
    unsupported("decoder " + type);
  }

  void add_template(Encoding& enc, bool before, size_t at) const {
    for (int64_t id : before ? template_before_ : template_after_) {
      enc.ids.push_back(id);
      enc.offsets.emplace_back(at, at);
    }
  }

  static bool is_word_byte(unsigned char c) { return std::isalnum(c) || c == '_' || c >= 0x80; }

  // The next added token at or after `pos` (leftmost, then longest); its span [mb, me)
  // includes the whitespace its lstrip/rstrip flags absorb.
  const AddedToken* next_added(std::string_view text, size_t pos, size_t& mb, size_t& me) const {
    if (added_.empty()) return nullptr;
    for (size_t p = pos; p < text.size(); ++p) {
      auto it = added_by_first_.find(static_cast<unsigned char>(text[p]));
      if (it == added_by_first_.end()) continue;
      for (size_t idx : it->second) {
        const AddedToken& t = added_[idx];
        if (text.compare(p, t.content.size(), t.content) != 0) continue;
        size_t e = p + t.content.size();
        if (t.single_word) {
          if (p > 0 && is_word_byte(static_cast<unsigned char>(text[p - 1]))) continue;
          if (e < text.size() && is_word_byte(static_cast<unsigned char>(text[e]))) continue;
        }
        size_t b = p;
        if (t.lstrip)
          while (b > pos && std::isspace(static_cast<unsigned char>(text[b - 1]))) --b;
        if (t.rstrip)
          while (e < text.size() && std::isspace(static_cast<unsigned char>(text[e]))) ++e;
        mb = b;
        me = e;
        return &t;
      }
    }
    return nullptr;
  }

  // Normalise text[from, to): returns the normalised bytes; when they differ from the input,
  // `map` gives, per normalised byte, the input span [first, second) it came from.
  std::string normalize(std::string_view text, size_t from, size_t to,
                        std::vector<std::pair<size_t, size_t>>& map) const {
    std::string_view seg = text.substr(from, to - from);
    map.clear();
    if (!nfc_) return std::string(seg);
    bool ascii = true;
    for (unsigned char c : seg)
      if (c >= 0x80) {
        ascii = false;
        break;
      }
    if (ascii) return std::string(seg);
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2* nfc = unorm2_getNFCInstance(&st);
    // Chunks that start at a normalisation boundary are normalised independently.
    std::string out;
    std::vector<UChar> u16, n16;
    const auto* s = reinterpret_cast<const uint8_t*>(seg.data());
    int32_t i = 0, n = static_cast<int32_t>(seg.size());
    bool changed = false;
    std::vector<std::pair<size_t, size_t>> m;
    while (i < n) {
      int32_t cb = i;
      u16.clear();
      do {
        UChar32 c;
        U8_NEXT(s, i, n, c);
        if (c < 0) c = 0xFFFD;
        if (U_IS_BMP(c)) {
          u16.push_back(static_cast<UChar>(c));
        } else {
          u16.push_back(U16_LEAD(c));
          u16.push_back(U16_TRAIL(c));
        }
        if (i < n) {
          int32_t j = i;
          UChar32 next;
          U8_NEXT(s, j, n, next);
          if (next >= 0 && unorm2_hasBoundaryBefore(nfc, next)) break;
        }
      } while (i < n);
      n16.resize(u16.size() * 3 + 8);
      st = U_ZERO_ERROR;
      int32_t len = unorm2_normalize(nfc, u16.data(), static_cast<int32_t>(u16.size()), n16.data(),
                                     static_cast<int32_t>(n16.size()), &st);
      if (U_FAILURE(st)) fail("{}: NFC normalisation failed ({})", describe(), u_errorName(st));
      std::string chunk;
      for (int32_t k = 0; k < len;) {
        UChar32 c;
        U16_NEXT(n16.data(), k, len, c);
        append_utf8(chunk, static_cast<char32_t>(c));
      }
      if (chunk != seg.substr(static_cast<size_t>(cb), static_cast<size_t>(i - cb))) changed = true;
      for (size_t k = 0; k < chunk.size(); ++k) m.emplace_back(from + static_cast<size_t>(cb), from + static_cast<size_t>(i));
      out += chunk;
    }
    if (changed) {
      // Where a chunk is unchanged, map byte for byte.
      map = std::move(m);
      size_t o = 0;
      for (size_t k = 0; k < out.size();) {
        size_t b = map[k].first, e = map[k].second, len = 0;
        while (k + len < out.size() && map[k + len].first == b) ++len;
        if (len == e - b && out.compare(k, len, text.substr(b, len)) == 0)
          for (size_t q = 0; q < len; ++q) map[k + q] = {b + q, b + q + 1};
        k += len;
        o += len;
      }
    }
    return out;
  }

  // Pre-tokenize and BPE one stretch of text without added tokens.
  void encode_segment(std::string_view text, size_t from, size_t to, Encoding& enc) const {
    if (from >= to) return;
    thread_local std::vector<std::pair<size_t, size_t>> map;
    std::string norm = normalize(text, from, to, map);
    std::vector<std::pair<size_t, size_t>> pieces{{0, norm.size()}}, next;
    for (const auto& step : splits_) {
      next.clear();
      for (auto [pb, pe] : pieces) split_piece(step, norm.data(), pb, pe, next);
      pieces.swap(next);
    }
    std::vector<int32_t> ids;
    for (auto [pb, pe] : pieces) {
      ids.clear();
      bpe(std::string_view(norm).substr(pb, pe - pb), ids);
      size_t at = pb;
      for (int32_t id : ids) {
        size_t len = bytes_[static_cast<size_t>(id)].size();
        enc.ids.push_back(id);
        if (map.empty()) {
          enc.offsets.emplace_back(from + at, from + at + len);
        } else {
          enc.offsets.emplace_back(map[at].first, map[at + len - 1].second);
        }
        at += len;
      }
    }
  }

  static void split_piece(const SplitStep& step, const char* s, size_t pb, size_t pe,
                          std::vector<std::pair<size_t, size_t>>& out) {
    size_t last = pb;
    bool pending_merge_next = false;
    size_t merge_start = 0;
    auto emit = [&](size_t b, size_t e) {
      if (b < e) out.emplace_back(b, e);
    };
    step.regex->for_each_match(s + pb, pe - pb, [&](size_t mb, size_t me) {
      mb += pb;
      me += pb;
      switch (step.behavior) {
        case SplitBehavior::Isolated:
          emit(last, mb);
          emit(mb, me);
          break;
        case SplitBehavior::Removed:
          emit(last, mb);
          break;
        case SplitBehavior::MergedWithPrevious:
          emit(last, me);
          break;
        case SplitBehavior::MergedWithNext:
          if (pending_merge_next) emit(merge_start, mb);
          else emit(last, mb);
          pending_merge_next = true;
          merge_start = mb;
          break;
      }
      last = me;
    });
    if (step.behavior == SplitBehavior::MergedWithNext && pending_merge_next) {
      emit(merge_start, pe);
    } else {
      emit(last, pe);
    }
  }

  static uint64_t key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b); }

  // BPE on the raw bytes of one pre-token: merge the lowest-ranked adjacent pair (leftmost on
  // ties) until none applies; memoised per word.
  void bpe(std::string_view word, std::vector<int32_t>& out) const {
    if (ignore_merges_) {
      auto it = raw_ids_.find(std::string(word));
      if (it != raw_ids_.end()) {
        out.push_back(static_cast<int32_t>(it->second));
        return;
      }
    }
    bool cacheable = word.size() <= 64;
    std::string w(word);
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(w);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        return;
      }
    }
    std::vector<int32_t> sym(word.size());
    for (size_t i = 0; i < word.size(); ++i) sym[i] = byte_ids_[static_cast<unsigned char>(word[i])];
    while (sym.size() > 1) {
      int32_t best_rank = INT32_MAX, best_id = -1;
      size_t best_at = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = merges_.find(key(sym[i], sym[i + 1]));
        if (it != merges_.end() && it->second.first < best_rank) {
          best_rank = it->second.first;
          best_id = it->second.second;
          best_at = i;
        }
      }
      if (best_id < 0) break;
      sym[best_at] = best_id;
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(best_at) + 1);
    }
    out.insert(out.end(), sym.begin(), sym.end());
    if (cacheable) {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (cache_.size() > 200000) cache_.clear();
      cache_.emplace(std::move(w), std::move(sym));
    }
  }

  std::string source_;
  std::vector<std::string> tokens_, bytes_;
  std::vector<bool> special_;
  std::unordered_map<std::string, int64_t> token_ids_, raw_ids_;
  std::array<int32_t, 256> byte_ids_{};
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merges_;
  bool ignore_merges_ = false, nfc_ = false;
  std::vector<AddedToken> added_;
  std::unordered_map<unsigned char, std::vector<size_t>> added_by_first_;
  std::vector<SplitStep> splits_;
  std::vector<int64_t> template_before_, template_after_;
  std::optional<int64_t> bos_, eos_, pad_, unk_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace

std::shared_ptr<Tokenizer> hf_tokenizer_from_json(const json& j, const std::string& source) {
  return std::make_shared<HfTokenizer>(j, source);
}

std::shared_ptr<Tokenizer> load_hf_tokenizer(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("tokenizer {}: cannot open", path);
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    fail("tokenizer {}: not valid JSON (truncated or corrupt?): {}", path, e.what());
  }
  auto tok = std::make_shared<HfTokenizer>(j, path);
  tok->read_config(std::filesystem::path(path).parent_path() / "tokenizer_config.json");
  return tok;
}

}  // namespace ellm
