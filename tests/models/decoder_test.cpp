// The decoder against a deliberately plain reference (loops over batch, heads and
// positions, no cache, no GQA trick), gradients against finite differences, the
// strict loader, the HF save/load round trip, meta-device parameter counts.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "ellm/io/checkpoint.h"
#include "ellm/io/safetensors.h"
#include "ellm/models/decoder.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"
#include "ellm/util/build_paths.h"

using namespace ellm;
namespace fs = std::filesystem;

namespace {

DecoderConfig tiny_config(const std::string& type = "qwen2", bool tie = false) {
  DecoderConfig c;
  c.model_type = type;
  c.vocab_size = 37;
  c.hidden_size = 16;
  c.intermediate_size = 24;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 4;
  c.rms_norm_eps = 1e-6;
  c.rope_theta = 10000.0;
  c.tie_word_embeddings = tie;
  return c;
}

std::string temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("ellm_decoder_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

// Plain reference: everything per (batch, position, head), straight from the equations.
torch::Tensor reference_logits(Decoder& m, const torch::Tensor& ids, const torch::Tensor& mask) {
  torch::NoGradGuard g;
  const DecoderConfig& c = m->config();
  auto P = m->named_parameters();
  auto W = [&](const std::string& n) { return P[n].to(torch::kFloat64); };
  auto has = [&](const std::string& n) { return P.contains(n); };
  const int64_t B = ids.size(0), T = ids.size(1), H = c.num_attention_heads, KV = c.num_key_value_heads,
                D = c.head_dim;
  auto inv = rope_inv_freq(c).to(torch::kFloat64);
  auto rms = [&](torch::Tensor x, const torch::Tensor& w) { return w * x / torch::sqrt(x.pow(2).mean() + c.rms_norm_eps); };
  auto rope = [&](torch::Tensor x, int64_t pos) {  // x [D]
    auto out = torch::empty_like(x);
    for (int64_t i = 0; i < D / 2; ++i) {
      double a = pos * inv[i].item<double>();
      double x1 = x[i].item<double>(), x2 = x[i + D / 2].item<double>();
      out[i] = x1 * std::cos(a) - x2 * std::sin(a);
      out[i + D / 2] = x2 * std::cos(a) + x1 * std::sin(a);
    }
    return out;
  };
  std::vector<torch::Tensor> results;
  for (int64_t b = 0; b < B; ++b) {
    // positions count real tokens
    std::vector<int64_t> pos(T);
    int64_t seen = 0;
    for (int64_t t = 0; t < T; ++t) pos[t] = mask[b][t].item<int64_t>() ? seen++ : 1;
    std::vector<torch::Tensor> h(T);
    for (int64_t t = 0; t < T; ++t) h[t] = W("model.embed_tokens.weight")[ids[b][t].item<int64_t>()];
    for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
      std::string pre = "model.layers." + std::to_string(l) + ".";
      auto lin = [&](const std::string& n, const torch::Tensor& x) {
        auto y = torch::mv(W(pre + n + ".weight"), x);
        if (has(pre + n + ".bias")) y = y + W(pre + n + ".bias");
        return y;
      };
      std::vector<torch::Tensor> q(T), k(T), v(T), x(T);
      for (int64_t t = 0; t < T; ++t) {
        x[t] = rms(h[t], W(pre + "input_layernorm.weight"));
        q[t] = lin("self_attn.q_proj", x[t]);
        k[t] = lin("self_attn.k_proj", x[t]);
        v[t] = lin("self_attn.v_proj", x[t]);
      }
      std::vector<torch::Tensor> nh(T);
      for (int64_t t = 0; t < T; ++t) {
        std::vector<torch::Tensor> heads;
        for (int64_t hd = 0; hd < H; ++hd) {
          int64_t kvh = hd / (H / KV);
          auto qh = rope(q[t].slice(0, hd * D, (hd + 1) * D), pos[t]);
          std::vector<double> s;
          std::vector<int64_t> keys;
          for (int64_t u = 0; u <= t; ++u) {
            if (!mask[b][u].item<int64_t>()) continue;
            auto kh = rope(k[u].slice(0, kvh * D, (kvh + 1) * D), pos[u]);
            s.push_back(torch::dot(qh, kh).item<double>() / std::sqrt(double(D)));
            keys.push_back(u);
          }
          auto o = torch::zeros({D}, torch::kFloat64);
          if (!s.empty()) {
            double mx = *std::max_element(s.begin(), s.end()), z = 0;
            for (double& e : s) z += (e = std::exp(e - mx));
            for (size_t i = 0; i < s.size(); ++i) o += s[i] / z * v[keys[i]].slice(0, kvh * D, (kvh + 1) * D);
          }
          heads.push_back(o);
        }
        nh[t] = h[t] + lin("self_attn.o_proj", torch::cat(heads));
        auto y = rms(nh[t], W(pre + "post_attention_layernorm.weight"));
        auto g = lin("mlp.gate_proj", y), u = lin("mlp.up_proj", y);
        nh[t] = nh[t] + lin("mlp.down_proj", g * torch::sigmoid(g) * u);
      }
      h = nh;
    }
    std::vector<torch::Tensor> rows;
    auto head = has("lm_head.weight") ? W("lm_head.weight") : W("model.embed_tokens.weight");
    for (int64_t t = 0; t < T; ++t) rows.push_back(torch::mv(head, rms(h[t], W("model.norm.weight"))));
    results.push_back(torch::stack(rows));
  }
  return torch::stack(results);
}

}  // namespace

TEST(Decoder, ParameterNamesAreHuggingFaces) {
  Decoder m(tiny_config("qwen2"));
  auto names = m->named_parameters().keys();
  std::set<std::string> s(names.begin(), names.end());
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                        "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.bias",
                        "model.layers.1.self_attn.v_proj.bias", "model.layers.1.self_attn.o_proj.weight",
                        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
                        "model.layers.0.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"})
    EXPECT_TRUE(s.count(n)) << n;
  EXPECT_FALSE(s.count("model.layers.0.self_attn.o_proj.bias"));
  Decoder llama(tiny_config("llama", /*tie=*/true));
  auto ln = llama->named_parameters();
  EXPECT_FALSE(ln.contains("lm_head.weight"));
  EXPECT_FALSE(ln.contains("model.layers.0.self_attn.q_proj.bias"));
}

TEST(Decoder, MatchesPlainReferenceWithPaddingAndGQA) {
  for (bool tie : {false, true}) {
    for (std::string type : {"qwen2", "llama"}) {
      auto c = tiny_config(type, tie);
      if (type == "llama") {
        c.rope_scaling = RopeScaling{"llama3", 8.0, 1.0, 4.0, 16};
        c.rope_theta = 500.0;
      }
      auto m = make_decoder(c, torch::kFloat64, torch::kCPU, 7);
      // Give the biases non-zero values so that they are exercised.
      {
        torch::NoGradGuard g;
        for (auto& [n, p] : m->base_parameters())
          if (n.find("bias") != std::string::npos || n.find("norm") != std::string::npos) p.add_(torch::randn_like(p) * 0.3);
      }
      auto ids = torch::tensor({0, 0, 5, 9, 3, 11, 4, 8, 1, 2, 36, 7}, torch::kInt64).view({2, 6});
      auto mask = torch::tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, torch::kInt64).view({2, 6});
      torch::NoGradGuard g;
      auto got = m->forward(ids, mask);
      EXPECT_EQ(got.scalar_type(), torch::kFloat64);
      auto want = reference_logits(m, ids, mask);
      // Padding positions are don't-care; compare real tokens.
      auto sel = mask.to(torch::kBool);
      EXPECT_TRUE(torch::allclose(got.index({sel}), want.index({sel}), 1e-5, 1e-5))
          << type << " tie=" << tie << " max diff " << (got.index({sel}) - want.index({sel})).abs().max();
    }
  }
}

TEST(Decoder, LeftPaddingDoesNotChangeLogits) {
  auto m = make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 3);
  torch::NoGradGuard g;
  auto alone = m->forward(torch::tensor({{5, 9, 3, 11}}, torch::kInt64));
  auto padded = m->forward(torch::tensor({{0, 0, 5, 9, 3, 11}}, torch::kInt64),
                           torch::tensor({{0, 0, 1, 1, 1, 1}}, torch::kInt64));
  EXPECT_EQ(alone.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(alone, padded.narrow(1, 2, 4), 1e-5, 1e-5));
}

TEST(Decoder, CacheStepsEqualFullForward) {
  auto m = make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 4);
  torch::NoGradGuard g;
  auto ids = torch::tensor({{0, 5, 9, 3, 11, 4, 2}, {7, 8, 1, 2, 6, 5, 3}}, torch::kInt64);
  auto mask = torch::tensor({{0, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}, torch::kInt64);
  auto full = m->forward(ids, mask);
  for (int64_t cap : {0, 7}) {
    KVCache cache;
    cache.reserve(cap);
    auto first = m->forward(ids.narrow(1, 0, 4), mask.narrow(1, 0, 4), &cache);
    // Real tokens only: a padding query attends to nothing, its output is don't-care.
    EXPECT_TRUE(torch::allclose(first.narrow(1, 1, 3), full.narrow(1, 1, 3), 1e-5, 1e-5));
    for (int64_t t = 4; t < 7; ++t) {
      auto step = m->forward(ids.narrow(1, t, 1), mask.narrow(1, 0, t + 1), &cache);
      EXPECT_TRUE(torch::allclose(step.squeeze(1), full.select(1, t), 1e-5, 1e-5)) << "t=" << t << " cap=" << cap;
    }
    EXPECT_EQ(cache.length, 7);
  }
}

TEST(Decoder, GradientsMatchFiniteDifferences) {
  auto m = make_decoder(tiny_config(), torch::kFloat64, torch::kCPU, 5);
  {
    torch::NoGradGuard g;
    for (auto& [n, p] : m->base_parameters())
      if (n.find("bias") != std::string::npos || n.find("norm") != std::string::npos) p.add_(torch::randn_like(p) * 0.3);
  }
  auto ids = torch::tensor({{0, 5, 9, 3}, {7, 8, 1, 2}}, torch::kInt64);
  auto mask = torch::tensor({{0, 1, 1, 1}, {1, 1, 1, 1}}, torch::kInt64);
  // Padding positions are don't-care outputs (a query with no key to attend to), left out.
  auto target = torch::randn({2, 4, 37}, torch::kFloat64) * mask.unsqueeze(-1).to(torch::kFloat64);
  auto loss_fn = [&] { return (m->forward(ids, mask) * target).sum(); };
  for (bool ckpt : {false, true}) {
    m->set_gradient_checkpointing(ckpt);
    m->train();
    m->zero_grad();
    loss_fn().backward();
    // One entry of every parameter kind.
    for (const char* name : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                             "model.layers.0.self_attn.q_proj.bias", "model.layers.1.self_attn.k_proj.weight",
                             "model.layers.0.self_attn.v_proj.bias", "model.layers.1.self_attn.o_proj.weight",
                             "model.layers.0.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
                             "model.layers.0.mlp.down_proj.weight", "model.layers.1.input_layernorm.weight",
                             "model.layers.0.post_attention_layernorm.weight", "model.norm.weight", "lm_head.weight"}) {
      auto p = m->named_parameters()[name];
      ASSERT_TRUE(p.grad().defined()) << name << " ckpt=" << ckpt;
      auto flat = p.view(-1);
      int64_t i = (flat.numel() * 3) / 7;
      double analytic = p.grad().view(-1)[i].item<double>();
      torch::NoGradGuard g;
      double eps = 1e-6, orig = flat[i].item<double>();
      flat[i] = orig + eps;
      double up = loss_fn().item<double>();
      flat[i] = orig - eps;
      double down = loss_fn().item<double>();
      flat[i] = orig;
      double numeric = (up - down) / (2 * eps);
      EXPECT_NEAR(analytic, numeric, 1e-6 * std::max(1.0, std::abs(numeric))) << name << " ckpt=" << ckpt;
    }
  }
}

TEST(Decoder, CheckpointingGivesIdenticalGradients) {
  auto m = make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 6);
  m->train();
  auto ids = torch::tensor({{1, 5, 9, 3, 4, 6}}, torch::kInt64);
  std::vector<torch::Tensor> grads[2];
  for (int ck = 0; ck < 2; ++ck) {
    m->set_gradient_checkpointing(ck == 1);
    m->zero_grad();
    m->forward(ids).logsumexp(-1).sum().backward();
    for (auto& p : m->parameters()) grads[ck].push_back(p.grad().clone());
  }
  for (size_t i = 0; i < grads[0].size(); ++i) EXPECT_TRUE(torch::allclose(grads[0][i], grads[1][i], 1e-6, 1e-6));
}

TEST(Decoder, SaveLoadRoundTripIsExact) {
  auto dir = temp_dir("roundtrip");
  auto m = make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 8);
  save_decoder(m, dir);
  EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors"));
  auto cfg = read_json_file((fs::path(dir) / "config.json").string());
  EXPECT_EQ(cfg["architectures"][0], "Qwen2ForCausalLM");
  EXPECT_EQ(cfg["torch_dtype"], "float32");
  auto loaded = load_decoder(dir, torch::kFloat32, torch::kCPU);
  auto ids = torch::tensor({{1, 5, 9, 3}}, torch::kInt64);
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(m->forward(ids), loaded->forward(ids)));
  // Sharded above a small cap, with an index; loads the same.
  auto sharded = temp_dir("sharded");
  save_decoder(m, sharded, 4096);
  EXPECT_TRUE(fs::exists(fs::path(sharded) / "model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(fs::path(sharded) / "model.safetensors"));
  auto again = load_decoder(sharded, torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(torch::equal(m->forward(ids), again->forward(ids)));
  // bf16 on disk loads into bf16 and into fp32.
  auto bf = make_decoder(tiny_config(), torch::kBFloat16, torch::kCPU, 8);
  auto bdir = temp_dir("bf16");
  save_decoder(bf, bdir);
  EXPECT_EQ(read_json_file((fs::path(bdir) / "config.json").string())["torch_dtype"], "bfloat16");
  auto b32 = load_decoder(bdir, torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(torch::equal(b32->named_parameters()["lm_head.weight"],
                           bf->named_parameters()["lm_head.weight"].to(torch::kFloat32)));
  fs::remove_all(dir);
  fs::remove_all(sharded);
  fs::remove_all(bdir);
}

TEST(Decoder, StrictLoaderNamesTheTensor) {
  auto dir = temp_dir("strict");
  auto m = make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 9);
  save_decoder(m, dir);
  auto expect_error = [&](const std::string& needle) {
    try {
      load_decoder(dir, torch::kFloat32, torch::kCPU);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto tensors = m->base_parameters();
  // A missing tensor.
  NamedTensors missing;
  for (auto& [n, p] : tensors)
    if (n != "model.layers.1.mlp.up_proj.weight") missing.emplace_back(n, p);
  save_checkpoint(dir, missing);
  expect_error("model.layers.1.mlp.up_proj.weight");
  // An unused (extra) tensor.
  NamedTensors extra(tensors.begin(), tensors.end());
  extra.emplace_back("model.layers.9.mlp.up_proj.weight", torch::zeros({2}));
  save_checkpoint(dir, extra);
  expect_error("model.layers.9.mlp.up_proj.weight");
  // A wrong shape.
  NamedTensors shaped;
  for (auto& [n, p] : tensors) shaped.emplace_back(n, n == "model.norm.weight" ? torch::ones({15}) : p);
  save_checkpoint(dir, shaped);
  expect_error("model.norm.weight");
  // An integer tensor where a float one belongs.
  NamedTensors typed;
  for (auto& [n, p] : tensors) typed.emplace_back(n, n == "model.norm.weight" ? torch::ones({16}, torch::kInt32) : p);
  save_checkpoint(dir, typed);
  expect_error("model.norm.weight");
  fs::remove_all(dir);
}

TEST(Decoder, ConfigFromHuggingFaceJson) {
  auto j = json::parse(R"({"architectures":["LlamaForCausalLM"],"model_type":"llama","vocab_size":128256,
    "hidden_size":4096,"intermediate_size":14336,"num_hidden_layers":32,"num_attention_heads":32,
    "num_key_value_heads":8,"rope_theta":500000.0,"rms_norm_eps":1e-05,"tie_word_embeddings":false,
    "rope_scaling":{"factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,
    "original_max_position_embeddings":8192,"rope_type":"llama3"},"torch_dtype":"bfloat16",
    "bos_token_id":128000,"eos_token_id":[128001,128008,128009],"pretraining_tp":1})");
  auto c = DecoderConfig::from_json(j, "config.json");
  EXPECT_EQ(c.head_dim, 128);
  ASSERT_TRUE(c.rope_scaling.has_value());
  EXPECT_EQ(c.rope_scaling->original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids.size(), 3u);
  auto back = c.to_json();
  EXPECT_EQ(back["pretraining_tp"], 1);
  EXPECT_EQ(back["eos_token_id"], j["eos_token_id"]);
  // llama3 scaling: high frequencies kept, low ones divided by the factor.
  auto inv = rope_inv_freq(c);
  auto plain = 1.0 / torch::pow(500000.0, torch::arange(0, 128, 2).to(torch::kFloat64) / 128.0);
  EXPECT_NEAR(inv[0].item<double>(), plain[0].item<double>(), 1e-9);
  EXPECT_NEAR(inv[63].item<double>(), plain[63].item<double>() / 8.0, 1e-12);
  auto bad = j;
  bad["rope_scaling"]["rope_type"] = "yarn";
  try {
    DecoderConfig::from_json(bad, "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("yarn"), std::string::npos);
  }
  bad = j;
  bad.erase("hidden_size");
  try {
    DecoderConfig::from_json(bad, "x/config.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hidden_size"), std::string::npos);
  }
}

TEST(Decoder, MetaDeviceCountsPublishedParameters) {
  auto c = DecoderConfig::load(ellm::source_dir() + "/configs/models/qwen2-7b.json");
  Decoder m(c, torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kMeta));
  EXPECT_EQ(m->num_parameters(), 7615616512LL);
  EXPECT_TRUE(m->named_parameters()["lm_head.weight"].is_meta());
  auto small = DecoderConfig::load(ellm::source_dir() + "/configs/models/qwen2-0.5b.json");
  EXPECT_EQ(Decoder(small, torch::TensorOptions().device(torch::kMeta))->num_parameters(), 494032768LL);
  auto llama = DecoderConfig::load(ellm::source_dir() + "/configs/models/llama3-8b.json");
  EXPECT_EQ(Decoder(llama, torch::TensorOptions().device(torch::kMeta))->num_parameters(), 8030261248LL);
}
