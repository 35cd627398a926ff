#pragma once
// The teacher's grade distribution (DESIGN §1, issue 7).
//
// At the position where the CoT's conclusion names its grade ("[conclusion] "),
// the teacher's next-token distribution says how likely each grade is. Grade
// names may span several tokens: p(name) is the chained product
//   p(t1 | prefix) · p(t2 | prefix t1) · …
// and the distribution is restricted to the grades and renormalised:
//   p(grade g) = p(name_g) / Σ_h p(name_h).
// score = Σ_g p(g) · value(g)   (the scale's values; DESIGN §2).
//
// Tokens of "<text before> <grade name>" are computed jointly, so that a
// byte-level BPE that merges the space into the grade word ("Ġexact") is
// respected: the shared prefix is the longest common token prefix of all
// grades' encodings, the rest is each grade's name. When one name would be a
// token prefix of another ("part" / "partial"), p(name) alone cannot tell them
// apart; then every name is followed by a terminator ("\n", what ends the
// conclusion line) and the chain includes it.
//
// The model is reached through one batched callback, so that this logic is
// tested with a deterministic fake and the real decoder batches its forwards.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ellm/data/pairs.h"

namespace ellm {

class Tokenizer;

struct GradeTokens {
  std::vector<int64_t> prefix;              // context up to where the grade names diverge
  std::vector<std::vector<int64_t>> names;  // per grade (scale order): its tokens after prefix, ≥ 1 each
};

// context_ids (e.g. the chat prompt) + tokens of text_before + label [+ terminator],
// split as above. Errors if two grades encode identically.
GradeTokens grade_tokens(const Tokenizer& tok, const std::vector<int64_t>& context_ids, const std::string& text_before,
                         const std::vector<std::string>& labels, const std::string& terminator = "\n");

// The same split on already-tokenised sequences (context + each grade's full tokens).
GradeTokens split_grade_tokens(const std::vector<std::vector<int64_t>>& full_sequences);

// For each sequence, log p(token | sequence) for each wanted token (natural log).
// An implementation may batch the sequences any way it likes.
using TokenLogProbs = std::function<std::vector<std::vector<double>>(
    const std::vector<std::vector<int64_t>>& sequences, const std::vector<std::vector<int64_t>>& wanted)>;

// Grade distributions for many contexts with one callback call: the queries of
// all items (prefix, and prefix + every proper prefix of every name, deduplicated)
// go in one list.
std::vector<std::vector<double>> grade_distributions(const TokenLogProbs& logprobs,
                                                     const std::vector<GradeTokens>& items);

// Σ p·value.
double expected_score(const std::vector<double>& probs, const GradeScale& grades);
// Index of the most probable grade (the lowest index among ties).
int most_probable(const std::vector<double>& probs);

}  // namespace ellm
