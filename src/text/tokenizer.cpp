// load_tokenizer (which backend for which file) and StreamDecoder.
#include "ellm/text/tokenizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>

#include "ellm/io/utf8.h"
#include "ellm/text/hf_tokenizer.h"
#include "ellm/text/sentencepiece.h"
#include "ellm/text/wordpiece.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {
namespace {

namespace fs = std::filesystem;

// BERT's tokenizer_config.json says whether the vocabulary is lower-cased.
WordPieceOptions wordpiece_options_for(const fs::path& dir) {
  WordPieceOptions o;
  auto cfg = dir / "tokenizer_config.json";
  if (fs::exists(cfg)) {
    std::ifstream in(cfg);
    auto j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) fail("{}: not valid JSON", cfg.string());
    if (j.contains("do_lower_case") && j["do_lower_case"].is_boolean()) o.lowercase = j["do_lower_case"].get<bool>();
    if (j.contains("tokenize_chinese_chars") && j["tokenize_chinese_chars"].is_boolean())
      o.tokenize_chinese_chars = j["tokenize_chinese_chars"].get<bool>();
  }
  return o;
}

// True when a tokenizer.json holds a WordPiece model (a BERT directory): we then use its
// vocab.txt with the WordPiece backend.
bool is_wordpiece_json(const fs::path& p) {
  std::ifstream in(p);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  // Cheap check first; the model section usually comes last, so parse only when hinted.
  if (head.find("BertPreTokenizer") == std::string::npos && head.find("BertNormalizer") == std::string::npos)
    return false;
  return true;
}

}  // namespace

std::shared_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  fs::path p(path);
  if (fs::is_directory(p)) {
    bool bert_json = fs::exists(p / "tokenizer.json") && is_wordpiece_json(p / "tokenizer.json");
    if (fs::exists(p / "tokenizer.json") && !(bert_json && fs::exists(p / "vocab.txt")))
      return load_hf_tokenizer((p / "tokenizer.json").string());
    for (const char* name : {"tokenizer.model", "spm.model", "sentencepiece.model"})
      if (fs::exists(p / name)) return load_sentencepiece((p / name).string());
    std::vector<fs::path> models;
    for (const auto& e : fs::directory_iterator(p))
      if (e.path().extension() == ".model") models.push_back(e.path());
    if (models.size() == 1) return load_sentencepiece(models[0].string());
    if (models.size() > 1) fail("{}: more than one .model file; name the one to use", path);
    if (fs::exists(p / "vocab.txt")) return load_wordpiece((p / "vocab.txt").string(), wordpiece_options_for(p));
    fail("{}: no tokenizer.json, SentencePiece .model or vocab.txt in this directory", path);
  }
  if (!fs::exists(p)) fail("tokenizer {}: no such file or directory", path);
  auto name = p.filename().string();
  if (ends_with(name, ".json")) return load_hf_tokenizer(path);
  if (ends_with(name, ".model")) return load_sentencepiece(path);
  if (ends_with(name, ".txt")) return load_wordpiece(path, wordpiece_options_for(p.parent_path()));
  fail("tokenizer {}: unknown kind (expected tokenizer.json, a SentencePiece .model or a BERT vocab.txt)", path);
}

StreamDecoder::StreamDecoder(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special) {
  ELLM_CHECK(tokenizer_ != nullptr, "StreamDecoder: null tokenizer");
}

std::string StreamDecoder::push(int64_t id) {
  if (skip_special_ && tokenizer_->is_special(id)) return {};
  pending_ += tokenizer_->token_bytes(id);
  // Emit everything up to the last complete UTF-8 sequence; hold back an incomplete tail
  // (at most 3 bytes: a lead byte and some continuation bytes still waiting for the rest).
  size_t keep = 0;
  size_t n = pending_.size();
  for (size_t back = 1; back <= 4 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(pending_[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    if (c >= 0xC0) {
      size_t need = utf8_sequence_length(c);
      if (need > back) keep = back;  // lead byte whose sequence is not complete yet
    }
    break;
  }
  std::string out = pending_.substr(0, n - keep);
  pending_.erase(0, n - keep);
  return replace_invalid_utf8(out);
}

std::string StreamDecoder::finish() {
  std::string out = replace_invalid_utf8(pending_);
  pending_.clear();
  return out;
}

}  // namespace ellm
