#pragma once
// BERT WordPiece backend (text/tokenizer.h) over a vocab.txt (one token per line, id = line
// number - 1), as BertTokenizer does it:
//   basic tokenizer: drop control characters and U+FFFD, whitespace → split, CJK ideographs
//   become words of their own, optional lower-casing + accent stripping (NFD, drop Mn),
//   punctuation (ASCII symbols and Unicode P*) split into single-character words;
//   then WordPiece: greedy longest match first, continuation pieces prefixed "##", a word
//   longer than max_input_chars_per_word or with no match is one [UNK].
// encode(add_special) wraps the text as [CLS] … [SEP]. Offsets are byte offsets of the
// original characters (a lower-cased or accent-stripped character keeps its input span).
#include <memory>
#include <string>

#include "ellm/text/tokenizer.h"

namespace ellm {

struct WordPieceOptions {
  bool lowercase = true;      // also strips accents, as BERT's do_lower_case does
  bool tokenize_chinese_chars = true;
  int max_input_chars_per_word = 100;
  std::string unk = "[UNK]", cls = "[CLS]", sep = "[SEP]", pad = "[PAD]", mask = "[MASK]";
};

std::shared_ptr<Tokenizer> load_wordpiece(const std::string& vocab_path, const WordPieceOptions& options = {});

}  // namespace ellm
