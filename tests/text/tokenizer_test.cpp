// Tokenizers: SentencePiece (train + load + offsets), WordPiece, a hand-made byte-level BPE
// tokenizer.json, load_tokenizer dispatch, StreamDecoder, bad input.
#include <gtest/gtest.h>

#include <fstream>

#include "ellm/text/hf_tokenizer.h"
#include "ellm/text/sentencepiece.h"
#include "ellm/text/tokenizer.h"
#include "ellm/text/wordpiece.h"
#include "ellm/util/error.h"
#include "tokenizer_test_util.h"

using namespace ellm;
using ellm::testing::temp_dir;
using ellm::testing::tiny_bpe_json;

namespace {

// Every token's offsets lie inside the text, in order, and (for tokens that came from the
// text) cover bytes whose concatenation rebuilds the text when nothing is dropped.
void expect_offsets_sane(const std::string& text, const Encoding& e) {
  ASSERT_EQ(e.ids.size(), e.offsets.size());
  size_t prev = 0;
  for (auto [b, end] : e.offsets) {
    EXPECT_LE(b, end);
    EXPECT_LE(end, text.size());
    EXPECT_GE(b, prev);
    prev = b;
  }
}

// A trained SentencePiece model, shared by the tests of this file (training takes ~1 s).
const std::string& trained_model() {
  static std::string path = [] {
    auto dir = temp_dir("spm");
    std::ofstream corpus(dir / "corpus.txt");
    const char* lines[] = {"grey sectional sofa with chaise", "gray linen sofa, 3 seats",
                           "stainless steel kitchen faucet", "12-gauge copper wire 50 ft.",
                           "led light bulb 60W equivalent", "oak vinyl plank flooring 2x4",
                           "灰色 沙发 三人位", "[category] query: \"sofa\" | item: \"sofa\" | match"};
    for (int r = 0; r < 60; ++r)
      for (const char* l : lines) corpus << l << " " << r << "\n";
    corpus.close();
    SentencePieceTrainOptions o;
    o.inputs = {(dir / "corpus.txt").string()};
    o.model_prefix = (dir / "spm").string();
    o.vocab_size = 400;  // 256 byte pieces + characters + a few merges
    o.model_type = "unigram";
    o.character_coverage = 1.0;
    o.user_symbols = {"<|im_start|>", "<|im_end|>", "exact", "[category]"};
    train_sentencepiece(o);
    return (dir / "spm.model").string();
  }();
  return path;
}

}  // namespace

TEST(SentencePiece, TrainsLoadsAndEncodesWithOffsets) {
  auto tok = load_tokenizer(trained_model());
  EXPECT_EQ(tok->describe(), "sentencepiece:" + trained_model());
  EXPECT_LE(tok->vocab_size(), 400);
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->unk_id(), 3);
  // User symbols come right after the four fixed ids, in order, and stay whole.
  EXPECT_EQ(tok->token_to_id("<|im_start|>"), 4);
  EXPECT_EQ(tok->token_to_id("<|im_end|>"), 5);
  EXPECT_EQ(tok->token_to_id("exact"), 6);
  EXPECT_TRUE(tok->is_special(4));
  EXPECT_FALSE(tok->is_special(6));  // a grade word is an ordinary token
  EXPECT_TRUE(tok->is_special(1));

  std::string text = "<|im_start|>grey sofa\nexact 灰色<|im_end|>";
  auto e = tok->encode(text);
  expect_offsets_sane(text, e);
  ASSERT_GE(e.size(), 5u);
  EXPECT_EQ(e.ids.front(), 4);
  EXPECT_EQ(e.offsets.front(), (std::pair<size_t, size_t>{0, 12}));
  EXPECT_EQ(e.ids.back(), 5);
  EXPECT_EQ(e.offsets.back(), (std::pair<size_t, size_t>{text.size() - 10, text.size()}));
  // The newline survives as a token of its own, and "exact" is one token.
  auto nl = tok->token_to_id("\n");
  ASSERT_TRUE(nl.has_value());
  EXPECT_NE(std::find(e.ids.begin(), e.ids.end(), *nl), e.ids.end());
  EXPECT_NE(std::find(e.ids.begin(), e.ids.end(), 6), e.ids.end());
  // Each token's offsets hold the text the token stands for (modulo the ▁ space marker).
  for (size_t i = 0; i < e.size(); ++i) {
    std::string piece = tok->token_bytes(e.ids[i]);
    std::string covered = text.substr(e.offsets[i].first, e.offsets[i].second - e.offsets[i].first);
    if (!piece.empty() && piece[0] == ' ' && (covered.empty() || covered[0] != ' ')) piece.erase(0, 1);
    EXPECT_EQ(piece, covered) << "token " << i;
  }
  EXPECT_EQ(tok->decode(e.ids), text);
  EXPECT_EQ(tok->decode(e.ids, true), "grey sofa\nexact 灰色");
  auto with_bos = tok->encode(text, true);
  EXPECT_EQ(with_bos.ids.front(), 1);
  EXPECT_EQ(with_bos.offsets.front(), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(with_bos.size(), e.size() + 1);
}

TEST(SentencePiece, ByteFallbackCoversUnseenCharacters) {
  auto tok = load_tokenizer(trained_model());
  std::string text = "sofa 😀 Ж";
  auto e = tok->encode(text);
  EXPECT_EQ(std::count(e.ids.begin(), e.ids.end(), *tok->unk_id()), 0);
  EXPECT_EQ(tok->decode(e.ids), text);
  StreamDecoder sd(tok, true);
  std::string streamed;
  for (auto id : e.ids) streamed += sd.push(id);
  streamed += sd.finish();
  EXPECT_EQ(streamed, text);  // no dummy prefix: streaming reproduces the text exactly
}

TEST(SentencePiece, BadInputAndBadFiles) {
  auto tok = load_tokenizer(trained_model());
  EXPECT_THROW(tok->encode(std::string("bad \xFF byte")), Error);
  EXPECT_THROW(tok->decode({999999}), Error);
  auto dir = temp_dir("spm-bad");
  {
    std::ofstream f(dir / "broken.model");
    f << "not a protobuf";
  }
  try {
    load_tokenizer((dir / "broken.model").string());
    FAIL() << "loaded a corrupt model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.model"), std::string::npos) << e.what();
  }
  SentencePieceTrainOptions o;
  o.inputs = {(dir / "missing.txt").string()};
  o.model_prefix = (dir / "m").string();
  EXPECT_THROW(train_sentencepiece(o), Error);
}

TEST(SentencePiece, BpeModelType) {
  auto dir = temp_dir("spm-bpe");
  {
    std::ofstream corpus(dir / "c.txt");
    for (int r = 0; r < 50; ++r) corpus << "kitchen faucet stainless steel " << r << "\nsofa grey linen\n";
  }
  SentencePieceTrainOptions o;
  o.inputs = {(dir / "c.txt").string()};
  o.model_prefix = (dir / "bpe").string();
  o.vocab_size = 320;
  o.model_type = "bpe";
  o.character_coverage = 1.0;
  train_sentencepiece(o);
  auto tok = load_tokenizer(dir.string());  // the directory's only .model
  std::string text = "grey kitchen sofa";
  auto e = tok->encode(text);
  expect_offsets_sane(text, e);
  EXPECT_EQ(tok->decode(e.ids), text);
}

// ---- WordPiece ------------------------------------------------------------------------

namespace {
std::string write_vocab(const std::vector<std::string>& tokens) {
  auto dir = temp_dir("wp");
  std::ofstream f(dir / "vocab.txt");
  for (const auto& t : tokens) f << t << "\n";
  return (dir / "vocab.txt").string();
}
}  // namespace

TEST(WordPiece, BasicTokenizerAndGreedyLongestMatch) {
  // ids:               0        1        2        3        4         5      6    7      8       9    10   11
  std::string vocab = write_vocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "grey", "so", "##fa", "cafe", "!", "沙", "un",
                                   /*12*/ "##want", "##ed", ",", "runn", "##ing"});
  auto tok = load_tokenizer(vocab);
  std::string text = "Grey SOFA, Café!  unwanted 沙发 running";
  auto e = tok->encode(text, true);
  std::vector<int64_t> want = {2, 5, 6, 7, 14, 8, 9, 11, 12, 13, 10, 1, 15, 16, 3};
  EXPECT_EQ(e.ids, want);
  // Byte offsets point at the original (cased, accented) characters.
  auto span = [&](size_t i) { return text.substr(e.offsets[i].first, e.offsets[i].second - e.offsets[i].first); };
  EXPECT_EQ(span(1), "Grey");
  EXPECT_EQ(span(2), "SO");
  EXPECT_EQ(span(3), "FA");
  EXPECT_EQ(span(5), "Café");
  EXPECT_EQ(span(10), "沙");
  EXPECT_EQ(span(11), "发");  // unknown CJK character: [UNK] with its span
  EXPECT_EQ(e.offsets.front(), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(e.offsets.back(), (std::pair<size_t, size_t>{text.size(), text.size()}));
  EXPECT_EQ(tok->decode(e.ids, true), "grey sofa, cafe! unwanted 沙 running");  // [UNK] is special too
  EXPECT_TRUE(tok->is_special(2));
  EXPECT_FALSE(tok->is_special(5));
  // Special tokens written in the text are matched as such.
  auto s = tok->encode("grey [SEP] sofa");
  EXPECT_EQ(s.ids, (std::vector<int64_t>{5, 3, 6, 7}));
  EXPECT_EQ(tok->pad_id(), 0);
  EXPECT_EQ(tok->unk_id(), 1);
}

TEST(WordPiece, CasedVocabAndMissingSpecials) {
  std::string vocab = write_vocab({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "Grey", "grey"});
  WordPieceOptions o;
  o.lowercase = false;
  auto tok = load_wordpiece(vocab, o);
  EXPECT_EQ(tok->encode("Grey grey GREY").ids, (std::vector<int64_t>{4, 5, 1}));
  std::string bad = write_vocab({"[PAD]", "grey"});
  EXPECT_THROW(load_wordpiece(bad), Error);
}

// ---- Hugging Face byte-level BPE, hand-made tokenizer.json ---------------------------

TEST(HfBpe, HandMadeTokenizerMergesByRank) {
  auto tok = hf_tokenizer_from_json(tiny_bpe_json(), "tiny.json");
  EXPECT_EQ(tok->vocab_size(), 268);
  std::string text = "hello world";
  auto e = tok->encode(text);
  // "hello" → he, ll → hell → hello; " world" → Ġw, or → Ġwor; l d → ld; Ġwor ld → Ġworld.
  EXPECT_EQ(e.ids, (std::vector<int64_t>{259, 264}));
  EXPECT_EQ(e.offsets, (std::vector<std::pair<size_t, size_t>>{{0, 5}, {5, 11}}));
  EXPECT_EQ(tok->id_to_token(264), ellm::testing::byte_char(' ') + "world");
  EXPECT_EQ(tok->token_bytes(264), " world");
  EXPECT_EQ(tok->decode(e.ids), text);
  // Pre-tokenizer: "hellos" is one word, so no "hello" merge boundary issue; digits split one by one.
  auto d = tok->encode("hi 123");
  EXPECT_EQ(d.ids, (std::vector<int64_t>{'h', 'i', ' ', '1', '2', '3'}));
}

TEST(HfBpe, AddedTokensMatchedFirstAndSkippable) {
  auto tok = hf_tokenizer_from_json(tiny_bpe_json(), "tiny.json");
  std::string text = "<|im_start|>hello<|im_end|>\nx<|im_st";
  auto e = tok->encode(text);
  std::vector<int64_t> want = {266, 259, 267, '\n', 'x', '<', '|', 'i', 'm', '_', 's', 't'};
  EXPECT_EQ(e.ids, want);
  EXPECT_EQ(e.offsets[0], (std::pair<size_t, size_t>{0, 12}));
  EXPECT_EQ(e.offsets[2], (std::pair<size_t, size_t>{17, 27}));
  EXPECT_EQ(tok->decode(e.ids), text);
  EXPECT_EQ(tok->decode(e.ids, true), "hello\nx<|im_st");
  EXPECT_TRUE(tok->is_special(266));
  EXPECT_EQ(tok->token_to_id("<|im_end|>"), 267);
  EXPECT_EQ(tok->eos_id(), 265);
}

TEST(HfBpe, NfcNormalizationKeepsInputOffsets) {
  auto tok = hf_tokenizer_from_json(tiny_bpe_json(), "tiny.json");
  std::string decomposed = "e\xCC\x81";  // e + combining acute → é (C3 A9)
  auto e = tok->encode(decomposed);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{0xC3, 0xA9}));
  for (auto [b, end] : e.offsets) {
    EXPECT_EQ(b, 0u);
    EXPECT_EQ(end, 3u);
  }
  EXPECT_EQ(tok->decode(e.ids), "\xC3\xA9");
}

TEST(HfBpe, RefusesWhatItDoesNotReproduce) {
  auto expect_refused = [](nlohmann::json j, const std::string& feature) {
    try {
      hf_tokenizer_from_json(j, "t.json");
      FAIL() << "accepted " << feature;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(feature), std::string::npos) << e.what();
    }
  };
  auto j = tiny_bpe_json();
  j["model"]["type"] = "WordPiece";
  expect_refused(j, "model type WordPiece");
  j = tiny_bpe_json();
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_refused(j, "normalizer Lowercase");
  j = tiny_bpe_json();
  j["pre_tokenizer"] = {{"type", "Metaspace"}};
  expect_refused(j, "pre_tokenizer Metaspace");
  j = tiny_bpe_json();
  j["model"]["byte_fallback"] = true;
  expect_refused(j, "byte_fallback");
  j = tiny_bpe_json();
  j["model"]["merges"].push_back("zz qq");
  expect_refused(j, "missing from the vocab");
  auto dir = temp_dir("hf-bad");
  {
    std::ofstream f(dir / "tokenizer.json");
    f << tiny_bpe_json().dump().substr(0, 500);
  }
  try {
    load_tokenizer(dir.string());
    FAIL() << "loaded a truncated tokenizer.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  auto tok = hf_tokenizer_from_json(tiny_bpe_json(), "tiny.json");
  EXPECT_THROW(tok->encode(std::string("\xC3")), Error);
}

TEST(HfBpe, TemplatePostProcessorAddsSpecials) {
  auto j = tiny_bpe_json();
  j["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "<|im_start|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "<|endoftext|>"}, {"type_id", 0}}}}}},
      {"pair", nullptr},
      {"special_tokens",
       {{"<|im_start|>", {{"id", "<|im_start|>"}, {"ids", {266}}, {"tokens", {"<|im_start|>"}}}},
        {"<|endoftext|>", {{"id", "<|endoftext|>"}, {"ids", {265}}, {"tokens", {"<|endoftext|>"}}}}}}};
  auto tok = hf_tokenizer_from_json(j, "tiny.json");
  auto e = tok->encode("hello", true);
  EXPECT_EQ(e.ids, (std::vector<int64_t>{266, 259, 265}));
  EXPECT_EQ(e.offsets.front(), (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(e.offsets.back(), (std::pair<size_t, size_t>{5, 5}));
  EXPECT_EQ(tok->encode("hello").ids, (std::vector<int64_t>{259}));
}

TEST(StreamDecoder, HoldsBackPartialUtf8) {
  auto tok = hf_tokenizer_from_json(tiny_bpe_json(), "tiny.json");
  StreamDecoder sd(tok);
  // 沙 = E6 B2 99, one byte token at a time.
  EXPECT_EQ(sd.push(259), "hello");
  EXPECT_EQ(sd.push(0xE6), "");
  EXPECT_EQ(sd.push(0xB2), "");
  EXPECT_EQ(sd.push(0x99), "沙");
  EXPECT_EQ(sd.push(267), "");  // special, skipped
  EXPECT_EQ(sd.push(0xF0), "");
  EXPECT_EQ(sd.finish(), "\xEF\xBF\xBD");  // a lone lead byte at the end becomes U+FFFD
  StreamDecoder keep(tok, false);
  EXPECT_EQ(keep.push(267), "<|im_end|>");
  EXPECT_EQ(keep.push(0xFF), "\xEF\xBF\xBD");  // never valid: replaced at once
}
