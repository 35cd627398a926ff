// BERT with the MLM head: Hugging Face's names, the loss against an independent
// double-precision computation from the equations, and the saved directory
// loading into a cross-encoder student's encoder unchanged.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "ellm/io/checkpoint.h"
#include "ellm/models/bert_mlm.h"
#include "ellm/models/cross_encoder.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

BertConfig tiny_mlm_config() {
  BertConfig c;
  c.vocab_size = 11;
  c.hidden_size = 8;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  return c;
}

// Non-trivial head parameters, so that every one of them shows in the loss.
void randomise(BertForMaskedLM& m) {
  torch::NoGradGuard g;
  torch::manual_seed(5);
  for (auto& p : m->named_parameters()) p.value().copy_(0.5 * torch::randn(p.value().sizes()));
}

}  // namespace

TEST(BertMlm, ParameterNamesAreHuggingFaceBertForMaskedLM) {
  BertForMaskedLM m(tiny_mlm_config());
  std::set<std::string> names;
  for (auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* n : {"bert.embeddings.word_embeddings.weight", "bert.embeddings.position_embeddings.weight",
                        "bert.embeddings.token_type_embeddings.weight", "bert.embeddings.LayerNorm.weight",
                        "bert.encoder.layer.0.attention.self.query.weight",
                        "bert.encoder.layer.0.output.LayerNorm.bias", "cls.predictions.transform.dense.weight",
                        "cls.predictions.transform.dense.bias", "cls.predictions.transform.LayerNorm.weight",
                        "cls.predictions.transform.LayerNorm.bias", "cls.predictions.bias"})
    EXPECT_TRUE(names.count(n)) << n;
  for (const auto& n : names) {
    EXPECT_EQ(n.find("pooler"), std::string::npos) << n;   // BertForMaskedLM has none
    EXPECT_EQ(n.find("decoder"), std::string::npos) << n;  // tied to the word embeddings, not a parameter
  }
  EXPECT_EQ(names.size(), 5u + 16u + 5u);  // embeddings, one layer, head
}

TEST(BertMlm, LossEqualsIndependentComputation) {
  BertConfig c = tiny_mlm_config();
  BertForMaskedLM m(c);
  randomise(m);
  m->eval();
  torch::Tensor ids = torch::tensor({{2, 5, 4, 9, 3, 0}, {2, 7, 4, 3, 0, 0}}, torch::kLong);  // [B=2,T=6]
  torch::Tensor mask = torch::tensor({{1, 1, 1, 1, 1, 0}, {1, 1, 1, 1, 0, 0}}, torch::kLong);
  std::vector<int64_t> pos_b = {0, 0, 1}, pos_t = {1, 3, 2}, target = {6, 8, 1};
  torch::Tensor positions = torch::tensor({0 * 6 + 1, 0 * 6 + 3, 1 * 6 + 2}, torch::kLong);  // flat b*T + t
  torch::Tensor logits = m->forward(ids, {}, mask, positions);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{3, c.vocab_size}));
  double got = mlm_loss_sum(logits, torch::tensor(target, torch::kLong)).item<double>();

  // By hand, in double: h from the encoder (tested on its own in bert_test), then
  // x = LN(gelu(W h + b)), logits = E x + bias, CE = logsumexp − logit[target].
  torch::Tensor hidden = m->bert()->forward(ids, {}, mask).to(torch::kDouble);
  std::map<std::string, torch::Tensor> P;
  for (auto& p : m->named_parameters()) P[p.key()] = p.value().detach().to(torch::kDouble);
  const torch::Tensor &W = P["cls.predictions.transform.dense.weight"], &b = P["cls.predictions.transform.dense.bias"],
                      &g = P["cls.predictions.transform.LayerNorm.weight"],
                      &beta = P["cls.predictions.transform.LayerNorm.bias"],
                      &E = P["bert.embeddings.word_embeddings.weight"], &bias = P["cls.predictions.bias"];
  const int64_t H = c.hidden_size, V = c.vocab_size;
  double expect = 0;
  for (size_t k = 0; k < target.size(); ++k) {
    std::vector<double> z(H), x(H);
    for (int64_t o = 0; o < H; ++o) {
      double s = b[o].item<double>();
      for (int64_t i = 0; i < H; ++i) s += W[o][i].item<double>() * hidden[pos_b[k]][pos_t[k]][i].item<double>();
      z[o] = 0.5 * s * (1.0 + std::erf(s / std::sqrt(2.0)));  // exact GELU (hidden_act "gelu")
    }
    double mean = 0, var = 0;
    for (double v : z) mean += v;
    mean /= H;
    for (double v : z) var += (v - mean) * (v - mean);
    var /= H;
    for (int64_t i = 0; i < H; ++i)
      x[i] = (z[i] - mean) / std::sqrt(var + c.layer_norm_eps) * g[i].item<double>() + beta[i].item<double>();
    std::vector<double> l(V);
    double mx = -1e300;
    for (int64_t v = 0; v < V; ++v) {
      double s = bias[v].item<double>();
      for (int64_t i = 0; i < H; ++i) s += E[v][i].item<double>() * x[i];
      l[v] = s;
      mx = std::max(mx, s);
    }
    double se = 0;
    for (double s : l) se += std::exp(s - mx);
    expect += mx + std::log(se) - l[target[k]];
  }
  EXPECT_NEAR(got, expect, 1e-4 * std::max(1.0, std::abs(expect)));
}

TEST(BertMlm, SavedDirectoryLoadsIntoCrossEncoderEncoderUnchanged) {
  std::string dir = fresh_dir("save");
  {
    std::ofstream(dir + "/vocab.txt") << "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\nb\nc\nd\ne\nf\n";
  }
  BertForMaskedLM m(tiny_mlm_config());
  randomise(m);
  save_bert_mlm(m, dir + "/out", dir + "/vocab.txt", {{"mask_token_id", 4}});
  json cfg = read_json_file(dir + "/out/config.json");
  EXPECT_EQ(cfg["model_type"], "bert");
  EXPECT_EQ(cfg["architectures"][0], "BertForMaskedLM");
  EXPECT_EQ(cfg["ellm_pretrain"]["tokenizer"], "vocab.txt");
  EXPECT_TRUE(fs::exists(dir + "/out/vocab.txt"));
  CheckpointReader reader(dir + "/out");
  EXPECT_TRUE(reader.contains("cls.predictions.bias"));
  EXPECT_FALSE(reader.contains("cls.predictions.decoder.weight"));

  // What `ellm distill --set init_from=DIR` does: geometry from config.json, encoder by HF name.
  CrossEncoder ce(BertConfig::from_json(cfg, "config.json"), 3);
  ce->init_weights(1);
  torch::Tensor pooler_before = ce->bert()->named_parameters()["pooler.dense.weight"].clone();
  EXPECT_EQ(load_bert_encoder(ce->bert(), reader, "auto"), "bert.");
  auto theirs = m->bert()->named_parameters();
  int compared = 0;
  for (auto& p : ce->bert()->named_parameters()) {
    if (p.key().rfind("pooler.", 0) == 0) continue;
    ASSERT_TRUE(theirs.contains(p.key())) << p.key();
    EXPECT_TRUE(torch::equal(p.value(), theirs[p.key()])) << p.key();
    ++compared;
  }
  EXPECT_EQ(compared, 5 + 16);
  // MLM trains no pooler: the student's keeps its initialisation.
  EXPECT_TRUE(torch::equal(ce->bert()->named_parameters()["pooler.dense.weight"], pooler_before));

  // Shapes are checked: a student of another width is refused, naming the tensor.
  BertConfig wide = tiny_mlm_config();
  wide.hidden_size = 16;
  CrossEncoder other(wide, 3);
  try {
    load_bert_encoder(other->bert(), reader, "auto");
    FAIL() << "a shape mismatch must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bert.embeddings"), std::string::npos) << e.what();
  }
}
