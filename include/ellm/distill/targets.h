#pragma once
// CoT → token-level targets on a student's tokens (DESIGN §2, issue 7).
//
// A parsed, located CoT (text/cot.h) says which bytes of the query and of the
// item text (text/item_text.h) each dimension talks about. A student sees
// tokens; its tokenizer's byte offsets say which bytes each token covers. Here
// the two meet:
//
//  BIO tags, for interaction students (the cross-encoder's token head):
//    one tag type per dimension kind — CAT, BRAND, MODEL, ATTR — so 9 tags:
//    O, B-CAT, I-CAT, B-BRAND, I-BRAND, B-MODEL, I-MODEL, B-ATTR, I-ATTR.
//    Every located term of every step tags the tokens that overlap its span:
//    the first such token B-, the following ones I-. Where terms overlap, the
//    earlier step keeps its tags. Special and padding tokens are O.
//
//  Attention factors, for representation students (the two-tower's pooling):
//    1 on ordinary tokens, factor(dimension, verdict) on tokens of key terms
//    (the largest where several cover a token), 0 on special and padding
//    tokens; then normalised so that each segment (query, item) sums to 1.
//
// Terms that the CoT quotes but that could not be located in the text produce
// no target (never guessed).
#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ellm/text/cot.h"

namespace ellm {

enum class Segment : uint8_t { special = 0, query = 1, item = 2 };

// Which bytes each token of a student input covers.
struct TokenAlignment {
  std::vector<Segment> segment;  // per token
  std::vector<Span> span;        // per token: bytes of the query or item text ([0,0) for special tokens)
  size_t size() const { return segment.size(); }
};

constexpr int kNumBioTags = 9;
const std::array<const char*, kNumBioTags>& bio_tag_names();
// "category" → 0 (CAT), "brand" → 1, "model" → 2, "attribute:*" → 3.
int dimension_kind(const std::string& dimension);

std::vector<uint8_t> bio_tags(const TokenAlignment& tokens, const Cot& cot);

struct AttentionFactors {
  // factor[kind][verdict]: kinds CAT, BRAND, MODEL, ATTR; verdicts match, partial, mismatch, absent.
  std::array<std::array<float, 4>, 4> factor{};
  AttentionFactors();  // defaults: decisive verdicts (match, mismatch) weigh most
  // {"category": {"match": 3, ...}, ...}; unknown names are errors.
  static AttentionFactors from_json(const json& j);
  json to_json() const;
};

std::vector<float> attention_factors(const TokenAlignment& tokens, const Cot& cot, const AttentionFactors& config);

}  // namespace ellm
