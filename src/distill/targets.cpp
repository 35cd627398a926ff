#include "ellm/distill/targets.h"

#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

const std::array<const char*, kNumBioTags>& bio_tag_names() {
  static const std::array<const char*, kNumBioTags> names = {"O",       "B-CAT",   "I-CAT",  "B-BRAND", "I-BRAND",
                                                             "B-MODEL", "I-MODEL", "B-ATTR", "I-ATTR"};
  return names;
}

int dimension_kind(const std::string& dimension) {
  if (dimension == "category") return 0;
  if (dimension == "brand") return 1;
  if (dimension == "model") return 2;
  if (starts_with(dimension, "attribute:")) return 3;
  fail("unknown CoT dimension '{}'", dimension);
}

namespace {
bool overlaps(const Span& a, const Span& b) { return a.begin < b.end && b.begin < a.end; }

// Calls fn(token, step) for every token overlapping a located term of a step, in step order.
template <typename Fn>
void for_each_term_token(const TokenAlignment& tokens, const Cot& cot, Fn fn) {
  for (size_t s = 0; s < cot.steps.size(); ++s) {
    const CotStep& step = cot.steps[s];
    for (auto [segment, spans, located] : {std::tuple{Segment::query, &step.query_spans, step.query_located},
                                           std::tuple{Segment::item, &step.item_spans, step.item_located}}) {
      if (!located) continue;
      for (const Span& span : *spans) {
        std::vector<size_t> covered;
        for (size_t t = 0; t < tokens.size(); ++t)
          if (tokens.segment[t] == segment && overlaps(tokens.span[t], span)) covered.push_back(t);
        fn(step, covered);
      }
    }
  }
}
}  // namespace

std::vector<uint8_t> bio_tags(const TokenAlignment& tokens, const Cot& cot) {
  ELLM_CHECK(tokens.segment.size() == tokens.span.size(), "token alignment: {} segments but {} spans",
             tokens.segment.size(), tokens.span.size());
  std::vector<uint8_t> tags(tokens.size(), 0);
  std::vector<bool> taken(tokens.size(), false);
  for_each_term_token(tokens, cot, [&](const CotStep& step, const std::vector<size_t>& covered) {
    int kind = dimension_kind(step.dimension);
    bool first = true;
    for (size_t t : covered) {
      if (taken[t]) {
        first = false;  // continuing after another term's token would not start a new entity cleanly
        continue;
      }
      tags[t] = static_cast<uint8_t>(1 + 2 * kind + (first ? 0 : 1));
      taken[t] = true;
      first = false;
    }
  });
  return tags;
}

AttentionFactors::AttentionFactors() {
  // verdict order: match, partial, mismatch, absent. A term on which the verdict
  // turned (match or mismatch) matters most; a term only one side states, least.
  factor[0] = {3.0f, 2.0f, 3.0f, 1.5f};  // category: what the query asks for
  factor[1] = {2.5f, 2.0f, 2.5f, 1.2f};  // brand
  factor[2] = {2.5f, 2.0f, 2.5f, 1.2f};  // model
  factor[3] = {2.0f, 1.5f, 2.0f, 1.2f};  // attributes
}

static const char* kKinds[] = {"category", "brand", "model", "attribute"};

AttentionFactors AttentionFactors::from_json(const json& j) {
  AttentionFactors a;
  for (auto it = j.begin(); it != j.end(); ++it) {
    int kind = -1;
    for (int k = 0; k < 4; ++k)
      if (it.key() == kKinds[k]) kind = k;
    if (kind < 0) fail("attention factors: unknown dimension '{}' (use category, brand, model, attribute)", it.key());
    for (auto v = it.value().begin(); v != it.value().end(); ++v) {
      Verdict verdict;
      if (!parse_verdict(v.key(), verdict)) fail("attention factors: unknown verdict '{}' for {}", v.key(), it.key());
      if (!v.value().is_number() || v.value().get<double>() <= 0)
        fail("attention factors: {}.{} must be a positive number", it.key(), v.key());
      a.factor[kind][static_cast<int>(verdict)] = v.value().get<float>();
    }
  }
  return a;
}

json AttentionFactors::to_json() const {
  json j;
  for (int k = 0; k < 4; ++k)
    for (Verdict v : {Verdict::match, Verdict::partial, Verdict::mismatch, Verdict::absent})
      j[kKinds[k]][verdict_name(v)] = factor[k][static_cast<int>(v)];
  return j;
}

std::vector<float> attention_factors(const TokenAlignment& tokens, const Cot& cot, const AttentionFactors& config) {
  ELLM_CHECK(tokens.segment.size() == tokens.span.size(), "token alignment: {} segments but {} spans",
             tokens.segment.size(), tokens.span.size());
  std::vector<float> f(tokens.size(), 0.0f);
  for (size_t t = 0; t < tokens.size(); ++t)
    if (tokens.segment[t] != Segment::special) f[t] = 1.0f;
  for_each_term_token(tokens, cot, [&](const CotStep& step, const std::vector<size_t>& covered) {
    float w = config.factor[dimension_kind(step.dimension)][static_cast<int>(step.verdict)];
    for (size_t t : covered) f[t] = std::max(f[t], w);
  });
  for (Segment seg : {Segment::query, Segment::item}) {
    double sum = 0;
    for (size_t t = 0; t < tokens.size(); ++t)
      if (tokens.segment[t] == seg) sum += f[t];
    if (sum > 0)
      for (size_t t = 0; t < tokens.size(); ++t)
        if (tokens.segment[t] == seg) f[t] = static_cast<float>(f[t] / sum);
  }
  return f;
}

}  // namespace ellm
