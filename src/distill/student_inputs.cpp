#include "ellm/distill/student_inputs.h"

#include <algorithm>

#include "ellm/util/error.h"

namespace ellm {

SpecialIds student_special_ids(const Tokenizer& tok) {
  SpecialIds s;
  auto cls = tok.token_to_id("[CLS]");
  if (!cls) cls = tok.bos_id();
  auto sep = tok.token_to_id("[SEP]");
  if (!sep) sep = tok.eos_id();
  ELLM_CHECK(cls.has_value(), "student tokenizer {} has neither a [CLS] token nor a BOS token", tok.describe());
  ELLM_CHECK(sep.has_value(), "student tokenizer {} has neither a [SEP] token nor an EOS token", tok.describe());
  s.cls = *cls;
  s.sep = *sep;
  auto pad = tok.token_to_id("[PAD]");
  if (!pad) pad = tok.pad_id();
  if (!pad) pad = tok.unk_id();
  s.pad = pad.value_or(0);
  return s;
}

StudentInputBuilder::StudentInputBuilder(std::shared_ptr<const Tokenizer> tokenizer, InputLimits limits)
    : tokenizer_(std::move(tokenizer)), limits_(limits) {
  ELLM_CHECK(tokenizer_ != nullptr, "student inputs need a tokenizer");
  ELLM_CHECK(limits_.max_length >= 5, "max_length {} is too small for [CLS] q [SEP] item [SEP]", limits_.max_length);
  ELLM_CHECK(limits_.max_query_tokens >= 1, "max_query_tokens must be at least 1, got {}", limits_.max_query_tokens);
  ELLM_CHECK(limits_.max_query_length >= 3 && limits_.max_item_length >= 3,
             "max_query_length and max_item_length must be at least 3 (got {} and {})", limits_.max_query_length,
             limits_.max_item_length);
  special_ = student_special_ids(*tokenizer_);
}

namespace {

void push(StudentTokens& in, int64_t id, int64_t type, Segment seg, Span span) {
  in.ids.push_back(id);
  in.token_types.push_back(type);
  in.alignment.segment.push_back(seg);
  in.alignment.span.push_back(span);
}

void push_text(StudentTokens& in, const Tokenizer& tok, const Encoding& enc, size_t n, int64_t type, Segment seg) {
  for (size_t i = 0; i < n; ++i) {
    bool special = tok.is_special(enc.ids[i]) || enc.offsets[i].first == enc.offsets[i].second;
    push(in, enc.ids[i], type, special ? Segment::special : seg,
         special ? Span{0, 0}
                 : Span{static_cast<int64_t>(enc.offsets[i].first), static_cast<int64_t>(enc.offsets[i].second)});
  }
}

Encoding encode_text(const Tokenizer& tok, const std::string& text) {
  Encoding e = tok.encode(text, false);
  ELLM_CHECK(e.offsets.size() == e.ids.size(), "tokenizer {} returned {} ids but {} offsets", tok.describe(),
             e.ids.size(), e.offsets.size());
  return e;
}

}  // namespace

StudentTokens StudentInputBuilder::cross(const std::string& query, const std::string& item_text) const {
  Encoding q = encode_text(*tokenizer_, query), it = encode_text(*tokenizer_, item_text);
  const int64_t room = limits_.max_length - 3;
  const size_t nq = static_cast<size_t>(
      std::min<int64_t>({static_cast<int64_t>(q.size()), limits_.max_query_tokens, room - 1}));
  const size_t ni = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(it.size()), room - static_cast<int64_t>(nq)));
  StudentTokens in;
  push(in, special_.cls, 0, Segment::special, {0, 0});
  push_text(in, *tokenizer_, q, nq, 0, Segment::query);
  push(in, special_.sep, 0, Segment::special, {0, 0});
  push_text(in, *tokenizer_, it, ni, 1, Segment::item);
  push(in, special_.sep, 1, Segment::special, {0, 0});
  return in;
}

StudentTokens StudentInputBuilder::query_tower(const std::string& query) const {
  Encoding q = encode_text(*tokenizer_, query);
  StudentTokens in;
  push(in, special_.cls, 0, Segment::special, {0, 0});
  push_text(in, *tokenizer_, q, std::min<size_t>(q.size(), limits_.max_query_length - 2), 0, Segment::query);
  push(in, special_.sep, 0, Segment::special, {0, 0});
  return in;
}

StudentTokens StudentInputBuilder::item_tower(const std::string& item_text) const {
  Encoding it = encode_text(*tokenizer_, item_text);
  StudentTokens in;
  push(in, special_.cls, 0, Segment::special, {0, 0});
  push_text(in, *tokenizer_, it, std::min<size_t>(it.size(), limits_.max_item_length - 2), 0, Segment::item);
  push(in, special_.sep, 0, Segment::special, {0, 0});
  return in;
}

TokenBatch collate(const std::vector<const StudentTokens*>& rows, int64_t pad_id) {
  ELLM_CHECK(!rows.empty(), "collate: empty batch");
  int64_t t = 0;
  for (auto* r : rows) t = std::max<int64_t>(t, static_cast<int64_t>(r->size()));
  const int64_t b = static_cast<int64_t>(rows.size());
  TokenBatch out;
  out.ids = torch::full({b, t}, pad_id, torch::kLong);
  out.types = torch::zeros({b, t}, torch::kLong);
  out.mask = torch::zeros({b, t}, torch::kLong);
  out.content = torch::zeros({b, t}, torch::kLong);
  auto ids = out.ids.accessor<int64_t, 2>(), types = out.types.accessor<int64_t, 2>(),
       mask = out.mask.accessor<int64_t, 2>(), content = out.content.accessor<int64_t, 2>();
  for (int64_t i = 0; i < b; ++i)
    for (size_t j = 0; j < rows[i]->size(); ++j) {
      ids[i][j] = rows[i]->ids[j];
      types[i][j] = rows[i]->token_types[j];
      mask[i][j] = 1;
      content[i][j] = rows[i]->alignment.segment[j] != Segment::special;
    }
  return out;
}

}  // namespace ellm
