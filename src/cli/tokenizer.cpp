// ellm tokenizer encode|decode|train|info: use and debug any tokenizer (text/tokenizer.h).
//   encode: one text per line (or, with --jsonl, one JSON string per line, so texts may hold
//           newlines) → one {"ids": [...], "offsets": [[b, e], ...]} per line (byte offsets).
//   decode: one {"ids": [...]} or [...] per line → one JSON string per line.
//   train:  a SentencePiece model from text files (text/sentencepiece.h).
// Invalid UTF-8 in plain-text input is replaced by U+FFFD (with a warning naming the line);
// in --jsonl input it is an error, as for every JSONL file.
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>

#include "commands.h"
#include "ellm/io/utf8.h"
#include "ellm/text/sentencepiece.h"
#include "ellm/text/tokenizer.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm::cli {
namespace {

// Calls fn(line_text, line_number) for each input line (stdin when path is empty or "-").
void for_each_line(const std::string& path, const std::function<void(std::string&, int64_t)>& fn) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (!path.empty() && path != "-") {
    file.open(path, std::ios::binary);
    if (!file) fail("cannot open {}", path);
    in = &file;
  }
  std::string line;
  int64_t n = 0;
  while (std::getline(*in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    fn(line, n);
  }
}

std::string where(const std::string& path, int64_t line) {
  return fmt::format("{}:{}", path.empty() || path == "-" ? "<stdin>" : path, line);
}

void add_encode(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("encode", "text → JSONL {\"ids\", \"offsets\"} (byte offsets), one line per text");
  static std::string tokenizer, input;
  static bool jsonl = false, add_special = false;
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json, SentencePiece .model, vocab.txt, or a directory")
      ->required();
  cmd->add_option("--input", input, "input file (default: stdin)");
  cmd->add_flag("--jsonl", jsonl, "input lines are JSON strings (texts may hold newlines)");
  cmd->add_flag("--add-special", add_special, "add what the tokenizer's post-processor adds (BOS, [CLS]…[SEP])");
  cmd->callback([] {
    auto tok = load_tokenizer(tokenizer);
    for_each_line(input, [&](std::string& line, int64_t n) {
      std::string text;
      if (jsonl) {
        if (trim(line).empty()) return;
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_string()) fail("{}: expected one JSON string per line", where(input, n));
        text = j.get<std::string>();
      } else if (!is_valid_utf8(line)) {
        spdlog::warn("{}: invalid UTF-8 replaced by U+FFFD", where(input, n));
        text = replace_invalid_utf8(line);
      } else {
        text = std::move(line);
      }
      Encoding e = tok->encode(text, add_special);
      json offsets = json::array();
      for (auto [b, end] : e.offsets) offsets.push_back({b, end});
      std::cout << json{{"ids", e.ids}, {"offsets", offsets}}.dump() << "\n";
    });
    std::cout.flush();
  });
}

void add_decode(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("decode", "JSONL ids ({\"ids\": [...]} or [...]) → one JSON string per line");
  static std::string tokenizer, input;
  static bool skip_special = false;
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json, SentencePiece .model, vocab.txt, or a directory")
      ->required();
  cmd->add_option("--input", input, "input file (default: stdin)");
  cmd->add_flag("--skip-special", skip_special, "drop special tokens (bos/eos/pad/added specials)");
  cmd->callback([] {
    auto tok = load_tokenizer(tokenizer);
    for_each_line(input, [&](std::string& line, int64_t n) {
      if (trim(line).empty()) return;
      json j = json::parse(line, nullptr, false);
      if (j.is_object() && j.contains("ids")) j = j["ids"];
      if (j.is_discarded() || !j.is_array()) fail("{}: expected {{\"ids\": [...]}} or [...]", where(input, n));
      std::vector<int64_t> ids;
      for (const auto& v : j) {
        if (!v.is_number_integer()) fail("{}: ids must be integers", where(input, n));
        ids.push_back(v.get<int64_t>());
      }
      try {
        std::cout << json(tok->decode(ids, skip_special)).dump() << "\n";
      } catch (const Error& e) {
        fail("{}: {}", where(input, n), e.what());
      }
    });
    std::cout.flush();
  });
}

void add_train(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("train", "train a SentencePiece model (writes PREFIX.model and PREFIX.vocab)");
  static SentencePieceTrainOptions o;
  static std::string user_symbols;
  static bool collapse_newlines = false, no_byte_fallback = false;
  cmd->add_option("--input", o.inputs, "text file(s), one sentence per line")->required();
  cmd->add_option("--model-prefix", o.model_prefix, "output prefix")->required();
  cmd->add_option("--vocab-size", o.vocab_size, "vocabulary size")->capture_default_str();
  cmd->add_option("--model-type", o.model_type, "unigram|bpe|word|char")->capture_default_str();
  cmd->add_option("--character-coverage", o.character_coverage, "share of characters covered (1.0 for small alphabets)")
      ->capture_default_str();
  cmd->add_option("--user-symbols", user_symbols,
                  "comma-separated pieces kept whole, e.g. '<|im_start|>,<|im_end|>,exact,partial'");
  cmd->add_flag("--collapse-newlines", collapse_newlines,
                "SentencePiece's default normalisation (nmt_nfkc): newlines become spaces");
  cmd->add_flag("--no-byte-fallback", no_byte_fallback, "unknown characters become <unk> instead of byte pieces");
  cmd->add_option("--normalization", o.normalization, "nfkc|nmt_nfkc|identity|nfkc_cf (default: nfkc)");
  cmd->add_option("--input-sentence-size", o.input_sentence_size, "sentences sampled (0 = all)")->capture_default_str();
  cmd->add_option("--threads", o.threads, "training threads")->capture_default_str();
  cmd->callback([] {
    o.user_symbols.clear();
    for (auto& s : split(user_symbols, ','))
      if (!s.empty()) o.user_symbols.push_back(s);
    o.keep_newlines = !collapse_newlines;
    o.byte_fallback = !no_byte_fallback;
    train_sentencepiece(o);
    auto tok = load_tokenizer(o.model_prefix + ".model");
    spdlog::info("wrote {}.model ({} pieces)", o.model_prefix, tok->vocab_size());
  });
}

void add_info(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("info", "vocabulary size and special tokens (JSON)");
  static std::string tokenizer;
  cmd->add_option("--tokenizer", tokenizer, "tokenizer.json, SentencePiece .model, vocab.txt, or a directory")
      ->required();
  cmd->callback([] {
    auto tok = load_tokenizer(tokenizer);
    auto named = [&](std::optional<int64_t> id) -> json {
      if (!id) return nullptr;
      return {{"id", *id}, {"token", tok->id_to_token(*id)}};
    };
    json specials = json::array();
    for (int64_t i = 0; i < tok->vocab_size(); ++i)
      if (tok->is_special(i)) specials.push_back({{"id", i}, {"token", tok->id_to_token(i)}});
    json j = {{"tokenizer", tok->describe()}, {"vocab_size", tok->vocab_size()}, {"bos", named(tok->bos_id())},
              {"eos", named(tok->eos_id())},  {"pad", named(tok->pad_id())},     {"unk", named(tok->unk_id())},
              {"special", specials}};
    std::cout << j.dump(2) << std::endl;
  });
}

}  // namespace

void add_tokenizer(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenizer", "encode, decode, train and inspect tokenizers");
  cmd->require_subcommand(1);
  add_encode(*cmd);
  add_decode(*cmd);
  add_train(*cmd);
  add_info(*cmd);
}

}  // namespace ellm::cli
