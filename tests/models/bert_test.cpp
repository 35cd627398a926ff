// BERT encoder: the forward pass against an independent double-precision
// computation written from the paper's equations, and HF checkpoint loading.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "ellm/io/checkpoint.h"
#include "ellm/models/bert.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

BertConfig tiny_bert_config() {
  BertConfig c;
  c.vocab_size = 23;
  c.hidden_size = 8;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 12;
  c.max_position_embeddings = 16;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  c.layer_norm_eps = 1e-12;
  return c;
}

// Reference forward of ONE sequence (its real tokens only), double precision,
// token by token and head by head from the parameter table.
std::vector<std::vector<double>> reference_forward(const std::map<std::string, torch::Tensor>& P, const BertConfig& c,
                                                   const std::vector<int64_t>& ids, const std::vector<int64_t>& types) {
  auto W = [&](const std::string& n) { return P.at(n).to(torch::kDouble).contiguous(); };
  const int64_t H = c.hidden_size, T = static_cast<int64_t>(ids.size()), nh = c.num_attention_heads, hd = H / nh;
  auto layer_norm = [&](std::vector<double> x, const torch::Tensor& g, const torch::Tensor& b) {
    double mean = 0, var = 0;
    for (double v : x) mean += v;
    mean /= H;
    for (double v : x) var += (v - mean) * (v - mean);
    var /= H;
    for (int64_t i = 0; i < H; ++i) x[i] = (x[i] - mean) / std::sqrt(var + c.layer_norm_eps) * g[i].item<double>() + b[i].item<double>();
    return x;
  };
  auto linear = [&](const std::vector<double>& x, const torch::Tensor& w, const torch::Tensor& b) {
    std::vector<double> y(w.size(0));
    for (int64_t o = 0; o < w.size(0); ++o) {
      double s = b[o].item<double>();
      for (int64_t i = 0; i < w.size(1); ++i) s += w[o][i].item<double>() * x[i];
      y[o] = s;
    }
    return y;
  };
  std::vector<std::vector<double>> h(T, std::vector<double>(H));
  auto we = W("embeddings.word_embeddings.weight"), pe = W("embeddings.position_embeddings.weight"),
       te = W("embeddings.token_type_embeddings.weight");
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < H; ++i)
      h[t][i] = we[ids[t]][i].item<double>() + pe[t][i].item<double>() + te[types[t]][i].item<double>();
    h[t] = layer_norm(h[t], W("embeddings.LayerNorm.weight"), W("embeddings.LayerNorm.bias"));
  }
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
    std::string p = "encoder.layer." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(T), k(T), v(T), ctx(T, std::vector<double>(H));
    for (int64_t t = 0; t < T; ++t) {
      q[t] = linear(h[t], W(p + "attention.self.query.weight"), W(p + "attention.self.query.bias"));
      k[t] = linear(h[t], W(p + "attention.self.key.weight"), W(p + "attention.self.key.bias"));
      v[t] = linear(h[t], W(p + "attention.self.value.weight"), W(p + "attention.self.value.bias"));
    }
    for (int64_t a = 0; a < nh; ++a)
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(T);
        double mx = -1e300, z = 0;
        for (int64_t u = 0; u < T; ++u) {
          double dot = 0;
          for (int64_t d = 0; d < hd; ++d) dot += q[t][a * hd + d] * k[u][a * hd + d];
          s[u] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[u]);
        }
        for (auto& x : s) z += (x = std::exp(x - mx));
        for (int64_t d = 0; d < hd; ++d) {
          double acc = 0;
          for (int64_t u = 0; u < T; ++u) acc += s[u] / z * v[u][a * hd + d];
          ctx[t][a * hd + d] = acc;
        }
      }
    for (int64_t t = 0; t < T; ++t) {
      auto ao = linear(ctx[t], W(p + "attention.output.dense.weight"), W(p + "attention.output.dense.bias"));
      for (int64_t i = 0; i < H; ++i) ao[i] += h[t][i];
      auto h1 = layer_norm(ao, W(p + "attention.output.LayerNorm.weight"), W(p + "attention.output.LayerNorm.bias"));
      auto inner = linear(h1, W(p + "intermediate.dense.weight"), W(p + "intermediate.dense.bias"));
      for (auto& x : inner) x = 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0)));  // exact GELU
      auto o = linear(inner, W(p + "output.dense.weight"), W(p + "output.dense.bias"));
      for (int64_t i = 0; i < H; ++i) o[i] += h1[i];
      h[t] = layer_norm(o, W(p + "output.LayerNorm.weight"), W(p + "output.LayerNorm.bias"));
    }
  }
  return h;
}

}  // namespace

TEST(Bert, ForwardMatchesIndependentComputationAndIgnoresPadding) {
  BertConfig c = tiny_bert_config();
  BertModel bert(c, true);
  bert->init_weights(3);
  {
    // Non-trivial LayerNorm and bias values, so that every parameter matters.
    torch::NoGradGuard g;
    torch::manual_seed(5);
    for (auto& p : bert->parameters()) p.add_(0.05 * torch::randn_like(p));
  }
  bert->eval();
  std::vector<std::vector<int64_t>> ids = {{2, 7, 9, 3, 11, 12, 3}, {2, 5, 3, 6, 3, 0, 0}};
  std::vector<std::vector<int64_t>> types = {{0, 0, 0, 0, 1, 1, 1}, {0, 0, 0, 1, 1, 0, 0}};
  std::vector<int64_t> lens = {7, 5};
  auto ids_t = torch::stack({torch::tensor(ids[0]), torch::tensor(ids[1])});
  auto types_t = torch::stack({torch::tensor(types[0]), torch::tensor(types[1])});
  auto mask = torch::stack({torch::ones({7}, torch::kLong), torch::tensor(std::vector<int64_t>{1, 1, 1, 1, 1, 0, 0})});
  // Grad mode on: the path training takes (fused QKV concatenated from the live parameters).
  torch::Tensor out = bert->forward(ids_t, types_t, mask);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 7, 8}));
  // Inference mode: the cached inference weights.
  torch::Tensor out_inference;
  {
    c10::InferenceMode inference;
    ASSERT_TRUE(bert->inference_path());
    out_inference = bert->forward(ids_t, types_t, mask);
  }
  auto params = named_tensors(*bert);
  for (int b = 0; b < 2; ++b) {
    std::vector<int64_t> row_ids(ids[b].begin(), ids[b].begin() + lens[b]),
        row_types(types[b].begin(), types[b].begin() + lens[b]);
    auto ref = reference_forward(params, c, row_ids, row_types);
    for (int64_t t = 0; t < lens[b]; ++t)
      for (int64_t i = 0; i < c.hidden_size; ++i) {
        EXPECT_NEAR(out[b][t][i].item<double>(), ref[t][i], 2e-5) << "row " << b << " token " << t << " dim " << i;
        EXPECT_NEAR(out_inference[b][t][i].item<double>(), ref[t][i], 2e-5) << "inference path, row " << b;
      }
  }
  // The pooler is tanh(dense(h[CLS])).
  auto pooled = bert->pool(out);
  auto expect = torch::tanh(torch::mm(out.select(1, 0), params["pooler.dense.weight"].t()) + params["pooler.dense.bias"]);
  EXPECT_TRUE(torch::allclose(pooled, expect, 1e-6, 1e-6));
}

TEST(Bert, ConfigReadsHuggingFaceFieldsAndRejectsBadOnes) {
  json j = {{"architectures", {"BertForMaskedLM"}}, {"hidden_size", 256}, {"num_hidden_layers", 4},
            {"num_attention_heads", 4}, {"intermediate_size", 1024}, {"vocab_size", 8000},
            {"hidden_act", "gelu"}, {"type_vocab_size", 2}, {"layer_norm_eps", 1e-12}, {"model_type", "bert"}};
  BertConfig c = BertConfig::from_json(j, "cfg.json");
  EXPECT_EQ(c.hidden_size, 256);
  EXPECT_EQ(c.max_position_embeddings, 512);  // HF default
  EXPECT_EQ(BertConfig::from_json(c.to_json(), "x").to_json(), c.to_json());
  j["num_attention_heads"] = 3;
  EXPECT_THROW(BertConfig::from_json(j, "cfg.json"), Error);
  j["num_attention_heads"] = 4;
  j["hidden_size"] = "big";
  try {
    BertConfig::from_json(j, "cfg.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos) << e.what();
  }
}

TEST(Bert, LoadsHuggingFaceCheckpointsStrictly) {
  BertConfig c = tiny_bert_config();
  BertModel src(c, true);
  src->init_weights(11);
  // Written the way transformers' BertForPreTraining saves: bert.* + cls.* heads + legacy position_ids.
  NamedTensors tensors;
  for (auto& item : src->named_parameters()) tensors.emplace_back("bert." + item.key(), item.value().detach());
  tensors.emplace_back("bert.embeddings.position_ids", torch::arange(16, torch::kLong).unsqueeze(0));
  tensors.emplace_back("cls.predictions.bias", torch::zeros({c.vocab_size}));
  std::string dir = fresh_dir("hf");
  save_checkpoint(dir, tensors);
  BertModel dst(c, true);
  EXPECT_EQ(load_bert_encoder(dst, CheckpointReader(dir), "auto"), "bert.");
  auto ids = torch::tensor(std::vector<int64_t>{2, 4, 6, 3}).unsqueeze(0);
  src->eval();
  dst->eval();
  EXPECT_TRUE(torch::equal(src->forward(ids, {}, {}), dst->forward(ids, {}, {})));

  // A tensor that is no part of BERT, a missing tensor and a wrong shape are errors naming the tensor.
  auto expect_error = [&](NamedTensors t, const std::string& needle) {
    std::string d = fresh_dir("bad");
    save_checkpoint(d, t);
    BertModel m(c, true);
    try {
      load_bert_encoder(m, CheckpointReader(d), "auto");
      FAIL() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  NamedTensors extra = tensors;
  extra.emplace_back("bert.encoder.layer.9.output.dense.weight", torch::zeros({2, 2}));
  expect_error(extra, "bert.encoder.layer.9.output.dense.weight");
  NamedTensors missing = tensors;
  std::string gone = missing[3].first;
  missing.erase(missing.begin() + 3);
  expect_error(missing, gone);
  NamedTensors wrong = tensors;
  wrong[0].second = torch::zeros({5, 5});
  expect_error(wrong, wrong[0].first);
}

namespace {

// A BERT with non-trivial weights everywhere and no dropout.
BertModel perturbed_bert(const BertConfig& c, uint64_t seed) {
  BertModel bert(c, false);
  bert->init_weights(seed);
  torch::NoGradGuard g;
  torch::manual_seed(static_cast<uint64_t>(seed) + 1);
  for (auto& p : bert->parameters()) p.add_(0.05 * torch::randn_like(p));
  return bert;
}

}  // namespace

// The inference weights are a cache: a parameter changed in place (an optimizer step, a
// checkpoint load) must be seen by the next forward, and going back to training drops them.
TEST(Bert, InferenceWeightsFollowParameterChanges) {
  BertConfig c = tiny_bert_config();
  BertModel bert = perturbed_bert(c, 4);
  bert->eval();
  auto ids = torch::tensor(std::vector<int64_t>{2, 7, 9, 3, 11, 3}).unsqueeze(0);
  auto infer = [&] {
    c10::InferenceMode inference;
    return bert->forward(ids, {}, {});
  };
  auto live = [&] { return bert->forward(ids, {}, {}).detach(); };  // grad mode: live parameters
  torch::Tensor before = infer();
  EXPECT_TRUE(torch::allclose(before, live(), 1e-5, 1e-6));
  {
    torch::NoGradGuard g;
    bert->named_parameters()["encoder.layer.1.attention.self.value.weight"].mul_(1.5);
    bert->named_parameters()["encoder.layer.0.output.LayerNorm.bias"].add_(0.3);
  }
  torch::Tensor after = infer();
  EXPECT_FALSE(torch::allclose(after, before, 1e-3, 1e-3));
  EXPECT_TRUE(torch::allclose(after, live(), 1e-5, 1e-6));
  // Training and back: still the current weights.
  bert->train();
  bert->eval();
  EXPECT_TRUE(torch::allclose(infer(), after, 0, 0));
}

// bf16 inference against fp32 at a BERT-tiny-like geometry, with padding: the hidden
// states (LayerNorm outputs, unit scale) agree to bf16 precision, and padded keys are still
// ignored. The tolerances are what bf16's 8-bit mantissa allows over 4 layers, with margin.
TEST(Bert, Bf16InferenceMatchesFp32WithinBf16Precision) {
  BertConfig c;
  c.vocab_size = 300;
  c.hidden_size = 64;
  c.num_hidden_layers = 4;
  c.num_attention_heads = 4;
  c.intermediate_size = 256;
  c.max_position_embeddings = 64;
  BertModel bert = perturbed_bert(c, 9);
  bert->eval();
  torch::manual_seed(3);
  auto ids = torch::randint(5, c.vocab_size, {3, 40}, torch::kLong);
  auto types = torch::cat({torch::zeros({3, 10}, torch::kLong), torch::ones({3, 30}, torch::kLong)}, 1);
  auto mask = torch::ones({3, 40}, torch::kLong);
  mask[1].narrow(0, 25, 15).zero_();
  c10::InferenceMode inference;
  torch::Tensor fp32 = bert->forward(ids, types, mask);
  bert->set_inference_dtype(torch::kBFloat16);
  torch::Tensor bf16 = bert->forward(ids, types, mask);
  bert->set_inference_dtype(torch::kFloat);
  EXPECT_TRUE(torch::equal(bert->forward(ids, types, mask), fp32));  // back to fp32 weights
  ASSERT_EQ(bf16.scalar_type(), torch::kFloat);  // fp32 hidden states out, whatever the compute dtype
  // Only the real tokens of row 1 (its padding positions compute garbage in any dtype).
  torch::Tensor real = mask.to(torch::kBool).unsqueeze(-1).expand_as(fp32);
  torch::Tensor diff = (bf16 - fp32).abs().masked_select(real);
  EXPECT_LT(diff.max().item<double>(), 0.15) << "max |bf16 - fp32|";
  EXPECT_LT(diff.mean().item<double>(), 0.02) << "mean |bf16 - fp32|";
  // Padding is ignored in bf16 too: row 1's real tokens equal a forward of its real tokens alone.
  bert->set_inference_dtype(torch::kBFloat16);
  torch::Tensor alone = bert->forward(ids[1].narrow(0, 0, 25).unsqueeze(0), types[1].narrow(0, 0, 25).unsqueeze(0), {});
  EXPECT_TRUE(torch::allclose(alone[0], bf16[1].narrow(0, 0, 25), 0, 0.05))
      << (alone[0] - bf16[1].narrow(0, 0, 25)).abs().max();
}

// BertOutputRows::first computes the last layer for the [CLS] row alone: that row, and every
// parameter's gradient through it, equal the full forward's, on the training path (live
// weights, autograd) and on the inference path, with padding. Two geometries: hidden 64, whose
// packed inference weights split at the query/key boundary (a view of the panels), and the
// tiny hidden 8, whose do not (the projection is computed whole, then narrowed).
TEST(Bert, FirstRowOnlyMatchesTheFullForwardAndItsGradients) {
  for (int64_t hidden : {64, 8}) {
    SCOPED_TRACE("hidden " + std::to_string(hidden));
    BertConfig c = tiny_bert_config();
    c.hidden_size = hidden;
    c.intermediate_size = 3 * hidden / 2;
    c.max_position_embeddings = 32;
    BertModel bert = perturbed_bert(c, 11);
    torch::manual_seed(12);
    auto ids = torch::randint(5, c.vocab_size, {3, 9}, torch::kLong);
    auto types = torch::cat({torch::zeros({3, 4}, torch::kLong), torch::ones({3, 5}, torch::kLong)}, 1);
    auto mask = torch::ones({3, 9}, torch::kLong);
    mask[2].narrow(0, 6, 3).zero_();
    auto probe = torch::randn({3, hidden});  // a loss that weighs every feature of the row differently
    auto grads_of = [&](BertOutputRows rows) {
      bert->zero_grad();
      torch::Tensor h = bert->forward(ids, types, mask, rows);
      (h.select(1, 0) * probe).sum().backward();
      std::map<std::string, torch::Tensor> g;
      for (auto& item : bert->named_parameters()) g[item.key()] = item.value().grad().clone();
      return std::pair{h.detach(), g};
    };
    bert->train();  // dropout is 0 in this config: the training path, deterministic
    auto [full, full_grads] = grads_of(BertOutputRows::all);
    auto [first, first_grads] = grads_of(BertOutputRows::first);
    ASSERT_EQ(first.sizes(), (std::vector<int64_t>{3, 1, hidden}));
    EXPECT_TRUE(torch::allclose(first.select(1, 0), full.select(1, 0), 1e-5, 1e-5))
        << (first.select(1, 0) - full.select(1, 0)).abs().max();
    for (const auto& [name, g] : full_grads) {
      EXPECT_GT(g.abs().max().item<double>(), 0) << name;  // the query rows too: every weight feeds [CLS]
      EXPECT_TRUE(torch::allclose(first_grads.at(name), g, 1e-4, 1e-6))
          << name << ": " << (first_grads.at(name) - g).abs().max();
    }
    bert->eval();
    c10::InferenceMode inference;
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      bert->set_inference_dtype(dtype);
      torch::Tensor all = bert->forward(ids, types, mask), one = bert->forward(ids, types, mask, BertOutputRows::first);
      ASSERT_EQ(one.sizes(), (std::vector<int64_t>{3, 1, hidden}));
      // Same weights, other kernels (one query row through batched_matmul, not the fused
      // attention): fp32 to rounding, bf16 to its precision.
      const double tol = dtype == torch::kFloat ? 1e-5 : 0.05;
      EXPECT_TRUE(torch::allclose(one.select(1, 0), all.select(1, 0), 0, tol))
          << c10::toString(dtype) << ": " << (one.select(1, 0) - all.select(1, 0)).abs().max();
      EXPECT_TRUE(torch::allclose(one.select(1, 0), full.select(1, 0), 0, dtype == torch::kFloat ? 1e-5 : 0.05));
    }
    bert->set_inference_dtype(torch::kFloat);
  }
}
