// The decoder's fast paths against its plain formulation: fused q/k/v and gate/up projections
// (shared parameter buffers at inference, concatenated under autograd, parts one by one with
// LoRA), including after the weights change in place, after Module::to replaces them and
// after a LoRA adapter is attached and merged; the fused RMSNorm / RoPE / SwiGLU kernels and
// the chunked linear + cross-entropy against plain tensor formulas, values and gradients; the
// decode-step attention kernel against float64.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

#include "ellm/models/decoder.h"
#include "ellm/models/decoder_ops.h"
#include "ellm/models/generate.h"
#include "ellm/models/lora.h"
#include "../../src/models/kernels/attention_kernel.h"

using namespace ellm;

namespace {

DecoderConfig fused_config(const std::string& type, bool tie) {
  DecoderConfig c;
  c.model_type = type;
  c.vocab_size = 53;
  c.hidden_size = 32;
  c.intermediate_size = 40;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 8;
  c.attention_bias = type == "llama";  // llama with o/q/k/v biases, qwen2 with its q/k/v biases
  c.mlp_bias = type == "llama";
  c.tie_word_embeddings = tie;
  return c;
}

void perturb_biases_and_norms(Decoder& m) {
  torch::NoGradGuard g;
  for (auto& [n, p] : m->base_parameters())
    if (n.find("bias") != std::string::npos || n.find("norm") != std::string::npos) p.add_(torch::randn_like(p) * 0.3);
}

// Logits with fused projections on or off, in inference mode (no autograd at all).
torch::Tensor logits(Decoder& m, const torch::Tensor& ids, const torch::Tensor& mask, bool fused) {
  m->set_fused_projections(fused);
  c10::InferenceMode inference;
  auto out = m->forward(ids, mask);
  m->set_fused_projections(true);
  return out;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Max difference relative to the reference's largest magnitude (fp32 view of both).
double rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  auto a32 = a.to(torch::kFloat32), b32 = b.to(torch::kFloat32);
  return max_diff(a32, b32) / std::max(1e-30, b32.abs().max().item<double>());
}

}  // namespace

TEST(DecoderFused, InferencePathEqualsUnfusedAndFollowsWeightChanges) {
  torch::manual_seed(0);
  for (std::string type : {"qwen2", "llama"}) {
    auto m = make_decoder(fused_config(type, type == "llama"), torch::kFloat32, torch::kCPU, 21);
    perturb_biases_and_norms(m);
    auto ids = torch::tensor({{0, 0, 5, 9, 3, 11, 4}, {7, 8, 1, 2, 36, 7, 52}}, torch::kInt64);
    auto mask = torch::tensor({{0, 0, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1}}, torch::kInt64);
    auto sel = mask.to(torch::kBool);
    auto& attn = m->model->layers[0]->self_attn;
    ASSERT_TRUE(attn->qkv.bound()) << "q/k/v parameters share one buffer from construction";
    ASSERT_TRUE(m->model->layers[1]->mlp->gate_up.bound());

    auto fused = logits(m, ids, mask, true), plain = logits(m, ids, mask, false);
    EXPECT_LT(max_diff(fused.index({sel}), plain.index({sel})), 1e-5) << type;

    // The autograd path (concatenated parameters) computes the same function.
    m->zero_grad();
    auto with_grad = m->forward(ids, mask);
    EXPECT_TRUE(with_grad.requires_grad());
    EXPECT_LT(max_diff(with_grad.detach().index({sel}), plain.index({sel})), 1e-5) << type;

    // In-place changes (optimizer step, loader, merge) are seen without any invalidation:
    // the fused weight is the parameters' own storage.
    {
      torch::NoGradGuard g;
      auto P = m->named_parameters();
      P["model.layers.1.self_attn.k_proj.weight"].add_(0.3);
      P["model.layers.0.mlp.up_proj.weight"].mul_(4.0);
      if (type == "qwen2") P["model.layers.0.self_attn.v_proj.bias"].add_(0.2);
    }
    auto changed = logits(m, ids, mask, true), changed_plain = logits(m, ids, mask, false);
    EXPECT_GT(max_diff(changed.index({sel}), fused.index({sel})), 1e-4) << type;
    EXPECT_LT(max_diff(changed.index({sel}), changed_plain.index({sel})), 1e-5) << type;

    // Module::to replaces every parameter's storage: the group notices and rebinds.
    m->to(torch::kFloat64);
    EXPECT_FALSE(attn->qkv.bound());
    auto f64 = logits(m, ids, mask, true);
    EXPECT_TRUE(attn->qkv.bound());
    EXPECT_EQ(f64.scalar_type(), torch::kFloat64);
    EXPECT_LT(max_diff(f64.index({sel}), logits(m, ids, mask, false).index({sel})), 1e-12) << type;
    EXPECT_LT(max_diff(f64.index({sel}).to(torch::kFloat32), changed_plain.index({sel})), 1e-4) << type;

    // LoRA attached: the parts run one by one with their adapters; merged: fused again.
    LoraConfig cfg;
    cfg.r = 2;
    cfg.alpha = 4;
    cfg.dropout = 0;
    apply_lora(m, cfg, 3);
    {
      torch::NoGradGuard g;
      for (auto& [n, p] : lora_parameters(m)) p.add_(torch::randn_like(p) * 0.3);
    }
    m->eval();
    auto adapted = logits(m, ids, mask, true);
    EXPECT_GT(max_diff(adapted.index({sel}), f64.index({sel})), 1e-4) << type;
    merge_lora(m);
    EXPECT_TRUE(attn->qkv.bound());
    auto merged = logits(m, ids, mask, true);
    // (merge_lora forms B·A in fp32, the adapter branch in the model's fp64)
    EXPECT_LT(max_diff(merged.index({sel}), adapted.index({sel})), 1e-5) << type;
  }
}

TEST(DecoderFused, GenerationIsTheSameFusedOrNot) {
  auto m = make_decoder(fused_config("qwen2", false), torch::kFloat32, torch::kCPU, 22);
  std::vector<std::vector<int64_t>> prompts{{5, 9, 3}, {7, 8, 1, 2, 6, 4}};
  GenerateOptions opt;
  opt.max_new_tokens = 8;
  auto fused = generate(m, prompts, opt);
  m->set_fused_projections(false);
  auto plain = generate(m, prompts, opt);
  EXPECT_EQ(fused, plain);
  // Unpadded rows (no mask at all) equal the same rows generated alone.
  m->set_fused_projections(true);
  std::vector<std::vector<int64_t>> same{{5, 9, 3, 4}, {7, 8, 1, 2}};
  auto both = generate(m, same, opt);
  for (size_t i = 0; i < same.size(); ++i) EXPECT_EQ(generate(m, {same[i]}, opt)[0], both[i]) << i;
}

TEST(DecoderFused, KernelsMatchPlainFormulasWithGradients) {
  torch::manual_seed(1);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const double tol = dtype == torch::kFloat32 ? 1e-5 : 3e-2;
    auto opts = torch::TensorOptions().dtype(dtype);
    // RMSNorm.
    auto x = torch::randn({3, 5, 16}, opts).requires_grad_(true);
    auto w = (1 + 0.3 * torch::randn({16}, opts)).requires_grad_(true);
    auto gy = torch::randn({3, 5, 16}, opts);
    auto y = decoder_ops::rms_norm(x, w, 1e-6);
    auto [gx, gw] = [&] {
      auto g = torch::autograd::grad({y}, {x, w}, {gy});
      return std::make_pair(g[0], g[1]);
    }();
    auto x2 = x.detach().clone().requires_grad_(true), w2 = w.detach().clone().requires_grad_(true);
    auto h = x2.to(torch::kFloat32);
    auto y2 = w2 * (h * torch::rsqrt(h.pow(2).mean(-1, true) + 1e-6)).to(dtype);
    auto g2 = torch::autograd::grad({y2}, {x2, w2}, {gy});
    EXPECT_LT(rel_diff(y, y2), tol);
    EXPECT_LT(rel_diff(gx, g2[0]), 2 * tol);
    EXPECT_LT(rel_diff(gw, g2[1]), 2 * tol);

    // SwiGLU on the two halves of one tensor (a fused gate/up output).
    auto gu = torch::randn({2, 3, 24}, opts).requires_grad_(true);
    auto parts = gu.split_with_sizes({12, 12}, -1);
    auto s = decoder_ops::swiglu(parts[0], parts[1]);
    auto gs = torch::randn_like(s);
    auto gfused = torch::autograd::grad({s}, {gu}, {gs})[0];
    auto gu2 = gu.detach().clone().requires_grad_(true);
    auto p2 = gu2.split_with_sizes({12, 12}, -1);
    auto s2 = torch::silu(p2[0]) * p2[1];
    auto gplain = torch::autograd::grad({s2}, {gu2}, {gs})[0];
    EXPECT_LT(rel_diff(s, s2), tol);
    EXPECT_LT(rel_diff(gfused, gplain), 2 * tol);

    // RoPE on q and k views of one projection, heads moved forward, q scaled.
    const int64_t B = 2, T = 3, Hq = 4, Hk = 2, D = 8;
    auto proj = torch::randn({B, T, (Hq + Hk) * D}, opts).requires_grad_(true);
    auto cs = torch::randn({1, T, 2, D}, opts);
    auto cos = cs.select(2, 0), sin = cs.select(2, 1);
    auto qk = proj.split_with_sizes({Hq * D, Hk * D}, -1);
    auto [q, k] = decoder_ops::rope_qk(qk[0].view({B, T, Hq, D}), qk[1].view({B, T, Hk, D}), cos, sin, 0.5);
    auto gq = torch::randn_like(q), gk = torch::randn_like(k);
    auto gproj = torch::autograd::grad({q, k}, {proj}, {gq, gk})[0];
    auto proj2 = proj.detach().clone().requires_grad_(true);
    auto qk2 = proj2.split_with_sizes({Hq * D, Hk * D}, -1);
    auto rot = [&](const torch::Tensor& t) {
      auto c = cos.unsqueeze(2), sn = sin.unsqueeze(2);
      auto half = torch::cat({-t.narrow(-1, D / 2, D / 2), t.narrow(-1, 0, D / 2)}, -1);
      return (t * c + half * sn).transpose(1, 2);
    };
    auto q2 = rot(qk2[0].view({B, T, Hq, D})) * 0.5, k2 = rot(qk2[1].view({B, T, Hk, D}));
    auto gproj2 = torch::autograd::grad({q2, k2}, {proj2}, {gq, gk})[0];
    EXPECT_TRUE(q.is_contiguous() && k.is_contiguous());
    EXPECT_LT(rel_diff(q, q2), tol);
    EXPECT_LT(rel_diff(k, k2), tol);
    EXPECT_LT(rel_diff(gproj, gproj2), tol);
  }
}

TEST(DecoderFused, ChunkedCrossEntropyEqualsLogitsThenCrossEntropy) {
  torch::manual_seed(2);
  // V large enough that the rows are processed in several chunks.
  const int64_t N = 300, H = 24, V = 70000;
  auto h = (torch::randn({N, H}) * 0.5).requires_grad_(true);
  auto w = (torch::randn({V, H}) * 0.1).requires_grad_(true);
  auto t = torch::randint(V, {N}, torch::kInt64);
  t.narrow(0, 10, 5).fill_(-100);  // ignored rows
  for (bool sum : {false, true}) {
    auto loss = decoder_ops::linear_cross_entropy(h, w, t, sum);
    auto g = torch::autograd::grad({loss * 1.7}, {h, w});
    namespace F = torch::nn::functional;
    auto ref = F::cross_entropy(torch::mm(h, w.t()), t,
                                F::CrossEntropyFuncOptions().ignore_index(-100).reduction(
                                    sum ? F::CrossEntropyFuncOptions::reduction_t(torch::kSum)
                                        : F::CrossEntropyFuncOptions::reduction_t(torch::kMean)));
    auto gr = torch::autograd::grad({ref * 1.7}, {h, w});
    EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-5 * std::abs(ref.item<double>())) << sum;
    EXPECT_LT(max_diff(g[0], gr[0]), 1e-5 * (sum ? 10 : 1)) << sum;
    EXPECT_LT(max_diff(g[1], gr[1]), 1e-5 * (sum ? 10 : 1)) << sum;
    EXPECT_TRUE(g[0].narrow(0, 10, 5).abs().max().item<double>() == 0.0);
  }
  // Without gradients: the loss alone.
  torch::NoGradGuard ng;
  auto plain = decoder_ops::linear_cross_entropy(h, w, t, false);
  EXPECT_FALSE(plain.requires_grad());
}

TEST(DecoderFused, LmLossEqualsCrossEntropyOfLogits) {
  for (bool tie : {false, true}) {
    auto m = make_decoder(fused_config("qwen2", tie), torch::kFloat64, torch::kCPU, 23);
    m->train();
    auto ids = torch::tensor({{1, 5, 9, 3, 4, 6}, {7, 8, 2, 2, 11, 3}}, torch::kInt64);
    auto h = m->hidden_states(ids.narrow(1, 0, 5));
    auto targets = ids.narrow(1, 1, 5);
    auto loss = m->lm_loss(h, targets);
    auto ref = torch::nn::functional::cross_entropy(m->logits(h).reshape({-1, 53}), targets.reshape({-1}));
    EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-12);
    auto p = m->model->embed_tokens->weight;
    auto g = torch::autograd::grad({loss}, {p}, {}, /*retain_graph=*/true)[0];
    auto gr = torch::autograd::grad({ref}, {p})[0];
    EXPECT_LT(max_diff(g, gr), 1e-12) << tie;
  }
}

// Decode-step attention (a few new queries over the cache's views) against float64: grouped
// heads, T = 1 and 3 new tokens, head dims on and off the 16/32-lane widths (the bf16 pair path
// and the widened one), a key count off the vector width, biases per batch or shared, with
// masked (-inf) positions and a non-contiguous last dim.
TEST(DecoderFused, DecodeAttentionMatchesFloat64) {
  torch::InferenceMode guard;
  torch::manual_seed(11);
  struct Geometry {
    int64_t H, KV, D;
  };
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (Geometry g : {Geometry{14, 2, 64}, Geometry{4, 4, 24}, Geometry{6, 2, 40}}) {
      for (int64_t T : {1, 3}) {
        for (int bias_kind = 0; bias_kind < 3; ++bias_kind) {
          const int64_t B = 2, S = 37, capacity = 50;
          auto q = torch::randn({B, g.H, T, g.D}).to(dtype);
          auto kc = torch::randn({B, g.KV, capacity, g.D}).to(dtype), vc = torch::randn({B, g.KV, capacity, g.D}).to(dtype);
          auto k = kc.narrow(2, 0, S), v = vc.narrow(2, 0, S);  // rows of the cache's views
          torch::Tensor bias;
          if (bias_kind > 0) {
            // [B or 1,1,1,T,S], made as the transpose of [.., S, T] so that its last dim is strided.
            auto b = torch::randn({bias_kind == 1 ? int64_t{1} : B, 1, 1, S, T}).transpose(3, 4);
            b.select(3, 0).select(3, 5).fill_(-std::numeric_limits<float>::infinity());
            bias = b;
          }
          torch::Tensor out = decoder_ops::attention_decode(q, k, v, bias);
          ASSERT_TRUE(out.defined());
          ASSERT_EQ(out.sizes(), (std::vector<int64_t>{B, T, g.H * g.D}));
          ASSERT_EQ(out.scalar_type(), dtype);

          auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
          const int64_t G = g.H / g.KV;
          auto kr = d(k).repeat_interleave(G, 1), vr = d(v).repeat_interleave(G, 1);  // [B,H,S,D]
          auto scores = torch::matmul(d(q), kr.transpose(-1, -2));                   // [B,H,T,S]
          if (bias.defined()) scores = scores + d(bias).squeeze(1);
          auto ref = torch::matmul(torch::softmax(scores, -1), vr).transpose(1, 2).reshape({B, T, g.H * g.D});
          auto err = (d(out) - ref).abs();
          auto bound = dtype == torch::kFloat32 ? torch::full_like(ref, 1e-5) : ref.abs() / 128 + 1e-5;
          EXPECT_TRUE((err <= bound).all().item<bool>())
              << c10::toString(dtype) << " H=" << g.H << " KV=" << g.KV << " D=" << g.D << " T=" << T
              << " bias=" << bias_kind << " max error " << err.max().item<double>();
        }
      }
    }
  }
}

// The portable decode-attention kernel (what a CPU without AVX-512 runs) against the one
// decoder_ops::attention_decode chose here: one sequence, one kv head of 7 query heads.
TEST(DecoderFused, PortableDecodeAttentionAgreesWithTheChosenKernel) {
  torch::InferenceMode guard;
  torch::manual_seed(12);
  const int64_t H = 7, D = 64, S = 29, T = 2;
  auto q = torch::randn({1, H, T, D}), k = torch::randn({1, 1, S, D}), v = torch::randn({1, 1, S, D});
  auto bias = torch::randn({1, 1, 1, T, S});
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto qd = q.to(dtype), kd = k.to(dtype), vd = v.to(dtype);
    torch::Tensor chosen = decoder_ops::attention_decode(qd, kd, vd, bias);
    ASSERT_TRUE(chosen.defined());
    auto portable = torch::empty_like(chosen);
    if (dtype == torch::kFloat32) {
      kernels::generic::attention_decode_f32(qd.data_ptr<float>(), H * T, T, kd.data_ptr<float>(), D,
                                             vd.data_ptr<float>(), D, S, D, bias.data_ptr<float>(), S,
                                             portable.data_ptr<float>(), D, H * D);
    } else {
      auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
      kernels::generic::attention_decode_bf16(bits(qd), H * T, T, bits(kd), D, bits(vd), D, S, D,
                                              bias.data_ptr<float>(), S, bits(portable), D, H * D);
    }
    // Same arithmetic up to summation order: fp32 to rounding, bf16 to one bf16 step.
    const double tol = dtype == torch::kFloat32 ? 1e-5 : 1.0 / 64;
    EXPECT_TRUE(torch::allclose(portable.to(torch::kFloat64), chosen.to(torch::kFloat64), tol, tol))
        << c10::toString(dtype) << " max difference "
        << (portable.to(torch::kFloat64) - chosen.to(torch::kFloat64)).abs().max().item<double>();
  }
}
