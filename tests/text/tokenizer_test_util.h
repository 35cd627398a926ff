#pragma once
// Helpers shared by the tokenizer tests: a hand-made byte-level BPE tokenizer.json (so the
// HF backend is tested without the npm reference files) and temp directories.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace ellm::testing {

// GPT-2's byte → printable code point table, written out independently of the library's.
inline std::string byte_char(int b) {
  std::vector<int> bs;
  for (int i = '!'; i <= '~'; ++i) bs.push_back(i);
  for (int i = 0xA1; i <= 0xAC; ++i) bs.push_back(i);
  for (int i = 0xAE; i <= 0xFF; ++i) bs.push_back(i);
  int cp = -1, n = 0;
  for (int i = 0; i < 256; ++i) {
    bool in = std::find(bs.begin(), bs.end(), i) != bs.end();
    int c = in ? i : 256 + n++;
    if (i == b) cp = c;
  }
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// Vocab: ids 0..255 = the 256 bytes (id = byte value), then merges "h e", "l l", "he ll",
// "hell o", "Ġ w", "o r", "Ġw or", "l d", "Ġwor ld" (ids 256..264), then added tokens
// <|endoftext|> 265, <|im_start|> 266, <|im_end|> 267 (special). Qwen-style pre-tokenizer.
inline nlohmann::json tiny_bpe_json() {
  using nlohmann::json;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  std::string G = byte_char(' ');
  std::vector<std::pair<std::string, std::string>> merges = {{"h", "e"},  {"l", "l"},   {"he", "ll"},
                                                             {"hell", "o"}, {G, "w"},   {"o", "r"},
                                                             {G + "w", "or"}, {"l", "d"}, {G + "wor", "ld"}};
  json m = json::array();
  int id = 256;
  for (auto& [a, b] : merges) {
    vocab[a + b] = id++;
    m.push_back(a + " " + b);
  }
  json added = json::array();
  int aid = 265;
  for (const char* t : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"})
    added.push_back({{"id", aid++}, {"content", t}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
                     {"normalized", false}, {"special", true}});
  std::string regex =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+";
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", {{"type", "NFC"}}},
          {"pre_tokenizer",
           {{"type", "Sequence"},
            {"pretokenizers",
             {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}}},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", ""},
            {"end_of_word_suffix", ""},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", m}}}};
}

inline std::filesystem::path temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("ellm-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace ellm::testing
