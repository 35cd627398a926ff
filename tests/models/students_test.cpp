// Student inputs (layouts, alignment, truncation) and the two students:
// shapes, pooling with factors, save → load round trips.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "../common/tiny_tokenizer.h"
#include "ellm/distill/student_inputs.h"
#include "ellm/io/checkpoint.h"
#include "ellm/models/student.h"
#include "ellm/text/item_text.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_path;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<test_support::TinyTokenizer> tiny_tok() {
  return std::make_shared<test_support::TinyTokenizer>(std::vector<std::string>{
      "grey", "sofa", "sectional", "gray", "linen", "chair", "oak", "table", "|", "color", ":", "brand", "ashley"});
}

StudentConfig tiny_student(StudentKind kind) {
  StudentConfig c;
  c.kind = kind;
  c.bert.vocab_size = 32;
  c.bert.hidden_size = 16;
  c.bert.num_hidden_layers = 1;
  c.bert.num_attention_heads = 2;
  c.bert.intermediate_size = 32;
  c.bert.max_position_embeddings = 32;
  c.limits = {12, 6, 10};
  c.projection_dim = 8;
  return c;
}

std::vector<Pair> tiny_pairs() {
  std::vector<Pair> ps(3);
  ps[0].query = "grey sectional sofa";
  ps[0].item.title = "Sectional Sofa";
  ps[0].item.attributes = {{"color", "gray"}};
  ps[1].query = "oak table";
  ps[1].item.title = "linen chair";
  ps[2].query = "chair";
  ps[2].item.title = "oak chair";
  ps[2].item.brand = "Ashley";
  for (size_t i = 0; i < ps.size(); ++i) ps[i].id = "p" + std::to_string(i);
  return ps;
}

}  // namespace

TEST(StudentInputs, CrossLayoutTypesAndByteSpans) {
  StudentInputBuilder b(tiny_tok(), {64, 16, 48});
  EXPECT_EQ(b.special().cls, 2);
  EXPECT_EQ(b.special().sep, 3);
  StudentTokens in = b.cross("grey sofa", "Sectional Sofa | color: gray");
  // [CLS] grey sofa [SEP] sectional sofa | color : gray [SEP]
  ASSERT_EQ(in.size(), 11u);
  EXPECT_EQ(in.ids[0], 2);
  EXPECT_EQ(in.ids[3], 3);
  EXPECT_EQ(in.ids[10], 3);
  EXPECT_EQ(in.token_types, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(in.alignment.segment[1], Segment::query);
  EXPECT_EQ(in.alignment.segment[3], Segment::special);
  EXPECT_EQ(in.alignment.segment[9], Segment::item);
  EXPECT_EQ(in.alignment.span[2], (Span{5, 9}));    // "sofa" in the query
  EXPECT_EQ(in.alignment.span[9], (Span{24, 28}));  // "gray" in the item text
}

TEST(StudentInputs, QueryCapTruncationAndTowerLimits) {
  // Room 8 − 3 = 5 content tokens. Query 2, item 6 → item trimmed to 3, query kept whole.
  StudentInputBuilder b(tiny_tok(), {8, 4, 5});
  StudentTokens in = b.cross("oak table", "grey linen sectional sofa oak chair");
  EXPECT_EQ(in.size(), 8u);
  EXPECT_EQ(in.token_types, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1}));
  // Query 4, item 4: the query keeps min(4, 32, room − 1 = 4), the item the 1 left.
  auto count = [](const StudentTokens& x, Segment seg) {
    int n = 0;
    for (auto s : x.alignment.segment) n += s == seg;
    return n;
  };
  StudentTokens eq = b.cross("grey linen sectional sofa", "oak chair oak table");
  EXPECT_EQ(count(eq, Segment::query), 4);
  EXPECT_EQ(count(eq, Segment::item), 1);
  // max_query_tokens 2 caps the query; the item takes the rest.
  StudentInputBuilder capped(tiny_tok(), {8, 4, 5, 2});
  StudentTokens c = capped.cross("grey linen sectional sofa", "oak chair oak table");
  EXPECT_EQ(count(c, Segment::query), 2);
  EXPECT_EQ(count(c, Segment::item), 3);
  // An unknown word is an ordinary token; a special token in the text would be segment `special`.
  EXPECT_EQ(b.query_tower("zebra").alignment.segment[1], Segment::query);
  EXPECT_EQ(b.query_tower("grey linen sectional sofa").size(), 4u);  // [CLS] grey linen [SEP]
  StudentTokens item = b.item_tower("oak chair");
  EXPECT_EQ(item.size(), 4u);
  EXPECT_EQ(item.token_types, (std::vector<int64_t>{0, 0, 0, 0}));
  TokenBatch batch = collate({&in, &item}, 0);
  EXPECT_EQ(batch.ids.sizes(), (std::vector<int64_t>{2, 8}));
  EXPECT_EQ(batch.mask.sum().item<int64_t>(), 12);
  EXPECT_EQ(batch.content[1].sum().item<int64_t>(), 2);
}

TEST(Students, CrossEncoderSavesAndLoadsExactly) {
  auto tok = tiny_tok();
  Student s(tiny_student(StudentKind::cross_encoder), tok, 4);
  auto pairs = tiny_pairs();
  torch::Tensor p = s.grade_probs(pairs, 2);
  ASSERT_EQ(p.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({3}), 1e-5, 1e-6));
  std::string dir = fresh_path("cross");
  save_student(s, dir, "");
  // HF names: a BertForSequenceClassification-style tree.
  CheckpointReader reader(dir);
  EXPECT_TRUE(reader.contains("bert.embeddings.word_embeddings.weight"));
  EXPECT_TRUE(reader.contains("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_TRUE(reader.contains("bert.pooler.dense.weight"));
  EXPECT_TRUE(reader.contains("classifier.weight"));
  EXPECT_TRUE(reader.contains("token_classifier.weight"));
  auto loaded = load_student(dir, tok);
  EXPECT_EQ(loaded->config().to_json(), s.config().to_json());
  EXPECT_TRUE(torch::equal(loaded->grade_probs(pairs, 3), p));
  // Batch size does not change the scores (padding is masked).
  EXPECT_TRUE(torch::allclose(s.grade_probs(pairs, 1), p, 1e-5, 1e-6));
  // A weight file with a tensor too many is refused, naming it.
  NamedTensors w;
  for (auto& [n, t] : s.named_weights()) w.emplace_back(n, t.detach());
  w.emplace_back("extra.weight", torch::zeros({2}));
  save_checkpoint(dir, w);
  try {
    load_student(dir, tok);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("extra.weight"), std::string::npos) << e.what();
  }
}

TEST(Students, TwoTowerScoresEmbeddingsAndRoundTrip) {
  auto tok = tiny_tok();
  for (bool shared : {true, false}) {
    StudentConfig c = tiny_student(StudentKind::two_tower);
    c.shared_towers = shared;
    Student s(c, tok, 9);
    auto pairs = tiny_pairs();
    torch::Tensor p = s.grade_probs(pairs, 2);
    ASSERT_EQ(p.sizes(), (std::vector<int64_t>{3, 3}));
    std::vector<Item> items;
    for (auto& pr : pairs) items.push_back(pr.item);
    torch::Tensor e = s.item_embeddings(items, 2);
    ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 8}));
    EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({3}), 1e-5, 1e-6));
    std::string dir = fresh_path(shared ? "tt_shared" : "tt_sep");
    save_student(s, dir, "");
    CheckpointReader reader(dir);
    EXPECT_TRUE(reader.contains(shared ? "bert.embeddings.word_embeddings.weight"
                                       : "item_bert.embeddings.word_embeddings.weight"));
    EXPECT_TRUE(reader.contains("grade_head.weight"));
    EXPECT_TRUE(torch::equal(load_student(dir, tok)->grade_probs(pairs, 3), p));
  }
}

TEST(Students, PoolingFactorsShiftAttentionAndUniformFactorsDoNothing) {
  auto tok = tiny_tok();
  Student s(tiny_student(StudentKind::two_tower), tok, 2);
  s.set_training(false);
  StudentTokens in = s.inputs().query_tower("grey sectional sofa");  // [CLS] 3 words [SEP]
  TokenBatch b = collate({&in}, 0);
  torch::NoGradGuard g;
  auto base = s.two_tower()->encode(0, b.ids, b.mask, b.content);
  // Specials get no attention.
  EXPECT_EQ(base.attention[0][0].item<float>(), 0.0f);
  EXPECT_EQ(base.attention[0][4].item<float>(), 0.0f);
  EXPECT_NEAR(base.attention.sum().item<float>(), 1.0f, 1e-6);
  auto uniform = s.two_tower()->encode(0, b.ids, b.mask, b.content, torch::tensor({0.f, 1.f, 1.f, 1.f, 0.f}).unsqueeze(0));
  EXPECT_TRUE(torch::allclose(uniform.embedding, base.embedding, 1e-5, 1e-6));
  // A factor on "sofa" pulls the pooled vector towards it; the reported attention stays the model's own.
  auto focused = s.two_tower()->encode(0, b.ids, b.mask, b.content, torch::tensor({0.f, .1f, .1f, .8f, 0.f}).unsqueeze(0));
  EXPECT_FALSE(torch::allclose(focused.embedding, base.embedding, 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(focused.attention, base.attention));
}

// Scoring in bf16 (Student::set_inference_dtype, what `ellm eval --dtype bf16` and the
// distill stage's dev scoring with train.precision bf16 use) stays within bf16 precision of
// fp32: grade probabilities to 0.02, unit item vectors to a cosine of 0.999.
TEST(Students, Bf16ScoringTracksFp32) {
  auto tok = tiny_tok();
  auto pairs = tiny_pairs();
  std::vector<Item> items;
  for (auto& pr : pairs) items.push_back(pr.item);
  for (StudentKind kind : {StudentKind::cross_encoder, StudentKind::two_tower}) {
    StudentConfig c = tiny_student(kind);
    c.bert.num_hidden_layers = 2;
    Student s(c, tok, 5);
    {
      // Larger weights than the initialisation, so that the grades actually differ.
      torch::NoGradGuard g;
      torch::manual_seed(8);
      for (auto& [name, p] : s.named_weights()) p.add_(0.3 * torch::randn_like(p));
    }
    torch::Tensor fp32 = s.grade_probs(pairs, 2);
    s.set_inference_dtype(torch::kBFloat16);
    EXPECT_EQ(s.inference_dtype(), torch::kBFloat16);
    torch::Tensor bf16 = s.grade_probs(pairs, 2);
    ASSERT_EQ(bf16.scalar_type(), torch::kFloat);
    EXPECT_LT((bf16 - fp32).abs().max().item<double>(), 0.02) << student_model_type(kind) << "\n" << bf16 << fp32;
    EXPECT_GT((std::get<0>(fp32.max(1)) - std::get<0>(fp32.min(1))).max().item<double>(), 0.05) << "grades do not differ";
    if (kind == StudentKind::two_tower) {
      torch::Tensor e16 = s.item_embeddings(items, 2);
      s.set_inference_dtype(torch::kFloat);
      torch::Tensor e32 = s.item_embeddings(items, 2);
      EXPECT_GT((e16 * e32).sum(1).min().item<double>(), 0.999);
    }
  }
}
