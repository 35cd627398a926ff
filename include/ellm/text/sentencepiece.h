#pragma once
// SentencePiece backend (text/tokenizer.h): load a .model, and train one from a corpus
// (`ellm tokenizer train`) for the tiny teacher's and the from-scratch students' vocabularies.
//
// libsentencepiece is reached through libellm_spm.so, loaded at run time (see
// src/text/sentencepiece_tokenizer.cpp for why). Offsets are byte offsets into the input,
// as SentencePiece's own alignment reports them (a normalised character maps back to the
// input bytes it came from).
//
// Special tokens: control pieces (<s>, </s>, <pad>) and user-defined pieces written as
// "<...>" (e.g. "<|im_start|>") count as special (skipped by decode(skip_special)); other
// user-defined pieces (grade and dimension words) are ordinary tokens that are never split.
// encode(add_special) prepends BOS when the model has one.
#include <memory>
#include <string>
#include <vector>

#include "ellm/text/tokenizer.h"

namespace ellm {

std::shared_ptr<Tokenizer> load_sentencepiece(const std::string& model_path);

struct SentencePieceTrainOptions {
  std::vector<std::string> inputs;  // text files, one sentence per line
  std::string model_prefix;         // writes <prefix>.model and <prefix>.vocab
  int vocab_size = 8000;
  std::string model_type = "unigram";  // unigram | bpe | word | char
  double character_coverage = 0.9995;
  // Pieces that are always one token (chat markers, grade and dimension words).
  std::vector<std::string> user_symbols;
  // Newlines carry structure (one CoT step per line): keep "\n" as a piece of its own and
  // do not collapse whitespace. SentencePiece's default (nmt_nfkc + collapsing) would turn
  // every newline into a space.
  bool keep_newlines = true;
  // SentencePiece's default prepends "▁" to every text, so "<|im_start|>" at the start of
  // a text would come after a lone "▁" token. Off: the first word has no space marker (as
  // in byte-level BPE), chat markers start the sequence, and decode(encode(x)) == x.
  bool add_dummy_prefix = false;
  bool byte_fallback = true;       // unknown characters become <0xXX> byte pieces, not <unk>
  std::string normalization = "";  // "" = nfkc when keep_newlines, else nmt_nfkc
  int64_t input_sentence_size = 2000000;  // sentences sampled from large inputs (0 = all)
  int max_sentence_length = 16384;        // bytes
  int threads = 1;
  bool quiet = true;  // SentencePiece's own progress log off
};

// Trains and writes <prefix>.model / <prefix>.vocab; ids: 0 <pad>, 1 <s>, 2 </s>, 3 <unk>,
// then the user symbols in order. Errors name the input and SentencePiece's message.
void train_sentencepiece(const SentencePieceTrainOptions& options);

}  // namespace ellm
