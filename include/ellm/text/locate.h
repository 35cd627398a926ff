#pragma once
// Finding a quoted term in a text: the link between a CoT's words and the
// bytes of the query or item they talk about (and, through a tokenizer's byte
// offsets, the student's tokens).
//
// Matching is case-insensitive (ASCII letters; other bytes compare exactly)
// and whitespace-insensitive (ASCII whitespace is ignored on both sides, so
// "36in" finds "36 in" and "sectional  sofa" finds "Sectional Sofa").
// Among the occurrences, those at word boundaries on both sides are preferred,
// then those starting at a word boundary ("sofa" in "sofas"), then any; every
// non-overlapping occurrence of the best kind is returned, in text order.
// A term that does not occur as a whole is located word by word (each
// whitespace-separated word must occur; the first occurrence of each, searched
// after the previous word's when possible). A term that cannot be located gets
// no spans: spans are never guessed.
#include <cstdint>
#include <string_view>
#include <vector>

namespace ellm {

// Half-open byte range [begin, end) into a UTF-8 text.
struct Span {
  int64_t begin = 0;
  int64_t end = 0;
  bool operator==(const Span& o) const { return begin == o.begin && end == o.end; }
};

struct TermLocation {
  bool located = false;      // every byte of the term was found (as a phrase, or word by word)
  bool by_words = false;     // found word by word, not as one phrase
  std::vector<Span> spans;   // empty when !located
};

// An empty (or all-whitespace) term is never located.
TermLocation locate_term(std::string_view text, std::string_view term);

}  // namespace ellm
