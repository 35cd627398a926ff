// AdamW and the schedule against PyTorch's own implementation and closed forms.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "ellm/train/adamw.h"
#include "../../src/models/kernels/adamw_kernel.h"
#include "ellm/train/schedule.h"
#include "ellm/util/error.h"

using namespace ellm;

TEST(AdamW, MatchesTorchAdamWStepForStep) {
  torch::manual_seed(0);
  auto w0 = torch::randn({5, 3}, torch::kDouble), b0 = torch::randn({3}, torch::kDouble);
  auto x = torch::randn({8, 5}, torch::kDouble), y = torch::randn({8, 3}, torch::kDouble);
  auto w1 = w0.clone().requires_grad_(), b1 = b0.clone().requires_grad_();
  auto w2 = w0.clone().requires_grad_(), b2 = b0.clone().requires_grad_();
  AdamW ours({{"layer.weight", w1}, {"layer.bias", b1}}, {1e-2, 0.9, 0.95, 1e-8, 0.1});
  // torch.optim.AdamW with weight decay only on the weight, as ours decides by name.
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{w2},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1)));
  groups.emplace_back(std::vector<torch::Tensor>{b2},
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0)));
  torch::optim::AdamW reference(groups);
  for (int step = 0; step < 20; ++step) {
    ours.zero_grad();
    reference.zero_grad();
    ((torch::mm(x, w1) + b1 - y).pow(2).sum()).backward();
    ((torch::mm(x, w2) + b2 - y).pow(2).sum()).backward();
    ours.step(1e-2);
    reference.step();
  }
  EXPECT_TRUE(torch::allclose(w1, w2, 1e-12, 1e-12)) << (w1 - w2).abs().max();
  EXPECT_TRUE(torch::allclose(b1, b2, 1e-12, 1e-12)) << (b1 - b2).abs().max();
  // zero_grad drops the gradients (the next backward writes them, nothing to add into).
  ASSERT_TRUE(w1.grad().defined());
  ours.zero_grad();
  EXPECT_FALSE(w1.grad().defined());
  EXPECT_FALSE(b1.grad().defined());
}

TEST(AdamW, StateRoundTripsThroughSafetensors) {
  auto w = torch::randn({4, 4}).requires_grad_();
  AdamW opt({{"w", w}}, {});
  w.sum().backward();
  opt.step(1e-3);
  auto path = (std::filesystem::temp_directory_path() / "ellm_adamw_state.safetensors").string();
  save_safetensors(path, opt.state_tensors(), opt.state_metadata());
  auto w2 = w.detach().clone().requires_grad_();
  AdamW restored({{"w", w2}}, {});
  restored.load_state(SafetensorsFile(path));
  EXPECT_EQ(restored.steps(), 1);
  auto a = opt.state_tensors(), b = restored.state_tensors();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // A state file for another parameter set is refused with the tensor's name.
  auto v = torch::randn({2}).requires_grad_();
  AdamW other({{"v", v}}, {});
  try {
    other.load_state(SafetensorsFile(path));
    FAIL() << "expected an error";
  } catch (const ellm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("v.exp_avg"), std::string::npos) << e.what();
  }
}

TEST(AdamW, NoDecayOnBiasesAndNorms) {
  auto w = torch::ones({2, 2});
  EXPECT_FALSE(default_no_decay("model.layers.0.mlp.up_proj.weight", w));
  EXPECT_TRUE(default_no_decay("model.layers.0.input_layernorm.weight", torch::ones({2})));
  EXPECT_TRUE(default_no_decay("encoder.layer.0.attention.output.LayerNorm.weight", torch::ones({2})));
  EXPECT_TRUE(default_no_decay("classifier.bias", torch::ones({2})));
}

TEST(ClipGradNorm, ScalesToMaxNorm) {
  auto a = torch::zeros({2}).requires_grad_(), b = torch::zeros({1}).requires_grad_();
  a.mutable_grad() = torch::tensor({3.0f, 0.0f});
  b.mutable_grad() = torch::tensor({4.0f});
  double norm = clip_grad_norm({{"a", a}, {"b", b}}, 1.0);
  EXPECT_NEAR(norm, 5.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<double>(), 3.0 / 5.0, 1e-5);
  EXPECT_NEAR(b.grad()[0].item<double>(), 4.0 / 5.0, 1e-5);
}

TEST(CosineSchedule, WarmupThenCosine) {
  CosineSchedule s{1.0, 10, 110, 0.1};
  EXPECT_DOUBLE_EQ(s.at(0), 0.1);
  EXPECT_DOUBLE_EQ(s.at(9), 1.0);
  EXPECT_NEAR(s.at(10), 1.0, 1e-12);
  EXPECT_NEAR(s.at(60), 0.1 + 0.9 * 0.5, 1e-12);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(s.at(110), 0.1, 1e-12);
  EXPECT_NEAR(s.at(500), 0.1, 1e-12);  // clamped past the end
}

// fp32 parameters take the fused one-pass update: it must track torch.optim.AdamW as the
// op-by-op path does (to fp32 rounding), and bump the parameter's version counter like an
// in-place op, since caches keyed on it (BERT's inference weights) must see the step.
TEST(AdamW, FusedFp32StepMatchesTorchAndBumpsTheVersion) {
  torch::manual_seed(1);
  auto w0 = torch::randn({64, 33}), x = torch::randn({16, 64}), y = torch::randn({16, 33});
  auto w1 = w0.clone().requires_grad_(), w2 = w0.clone().requires_grad_();
  AdamW ours({{"layer.weight", w1}}, {1e-2, 0.9, 0.95, 1e-8, 0.1});
  torch::optim::AdamW reference(std::vector<torch::Tensor>{w2},
                                torch::optim::AdamWOptions(1e-2).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.1));
  for (int step = 0; step < 20; ++step) {
    ours.zero_grad();
    reference.zero_grad();
    ((torch::mm(x, w1) - y).pow(2).sum()).backward();
    ((torch::mm(x, w2) - y).pow(2).sum()).backward();
    auto version = w1._version();
    ours.step(1e-2);
    EXPECT_GT(w1._version(), version);
    reference.step();
  }
  EXPECT_TRUE(torch::allclose(w1, w2, 1e-5, 1e-6)) << (w1 - w2).abs().max();
  // A non-contiguous parameter takes the op-by-op path, with the same result.
  auto base = torch::empty({33, 64}).t().copy_(w0).requires_grad_();  // same values, column-major
  ASSERT_FALSE(base.is_contiguous());
  AdamW strided({{"layer.weight", base}}, {1e-2, 0.9, 0.95, 1e-8, 0.1});
  auto w3 = w0.clone().requires_grad_();
  AdamW fused({{"layer.weight", w3}}, {1e-2, 0.9, 0.95, 1e-8, 0.1});
  for (int step = 0; step < 5; ++step) {
    for (auto* p : {&base, &w3}) {
      if (p->grad().defined()) p->mutable_grad().zero_();
      ((torch::mm(x, *p) - y).pow(2).sum()).backward();
    }
    strided.step(1e-2);
    fused.step(1e-2);
  }
  EXPECT_TRUE(torch::allclose(base, w3, 1e-5, 1e-6)) << (base - w3).abs().max();
}

TEST(AdamW, FusedBf16StepMatchesTheFp32MasterCopyPath) {
  // A bf16 parameter: the fused pass (contiguous) against the op-by-op fp32 master-copy path
  // (the same values held column-major), and both against fp32 AdamW within bf16 rounding.
  torch::manual_seed(2);
  auto w0 = torch::randn({64, 33}).to(torch::kBFloat16), x = torch::randn({16, 64}), y = torch::randn({16, 33});
  auto fused_w = w0.clone().requires_grad_();
  auto strided_w = torch::empty({33, 64}, torch::kBFloat16).t().copy_(w0).requires_grad_();
  ASSERT_FALSE(strided_w.is_contiguous());
  auto fp32_w = w0.to(torch::kFloat).requires_grad_();
  AdamWOptions o{1e-2, 0.9, 0.95, 1e-8, 0.1};
  AdamW fused({{"layer.weight", fused_w}}, o), strided({{"layer.weight", strided_w}}, o), fp32({{"layer.weight", fp32_w}}, o);
  for (int step = 0; step < 10; ++step) {
    for (auto* p : {&fused_w, &strided_w, &fp32_w}) {
      if (p->grad().defined()) p->mutable_grad().zero_();
      // The same fp32 gradient for all three (from the bf16 values the step starts from).
      auto w = fused_w.detach().to(torch::kFloat).requires_grad_();
      ((torch::mm(x, w) - y).pow(2).sum()).backward();
      p->mutable_grad() = w.grad().to(p->scalar_type());
    }
    auto version = fused_w._version();
    fused.step(1e-2);
    strided.step(1e-2);
    fp32.step(1e-2);
    EXPECT_GT(fused_w._version(), version);
    // Each step: the paths agree to bf16 rounding; re-synchronise so that a one-ulp tie
    // rounded differently cannot grow over steps.
    ASSERT_TRUE(torch::allclose(fused_w.to(torch::kFloat), strided_w.to(torch::kFloat), 1e-2, 1e-3))
        << (fused_w.to(torch::kFloat) - strided_w.to(torch::kFloat)).abs().max();
    ASSERT_TRUE(torch::allclose(fused_w.to(torch::kFloat), fp32_w.detach(), 1e-2, 1e-3))
        << (fused_w.to(torch::kFloat) - fp32_w.detach()).abs().max();
    torch::NoGradGuard no_grad;
    strided_w.copy_(fused_w);
    fp32_w.copy_(fused_w.to(torch::kFloat));
  }
  // The moments are fp32 and equal across the paths.
  EXPECT_TRUE(torch::allclose(fused.state_tensors()[0].second, strided.state_tensors()[0].second, 1e-5, 1e-7));
}

// The vector kernels (src/models/kernels/adamw_*) give the bits of the plain loop, in fp32 and
// with bf16 parameters (fp32 moments), on the portable build and the chosen one, over a range
// with a vector body and a tail, with a NaN gradient.
TEST(AdamW, KernelsGiveThePlainLoopsBitsOnEveryInstructionSet) {
  const int64_t n = 203, begin = 3, end = 200;
  const kernels::AdamWCoefficients c{0.999f, 0.9f, 0.95f, 0.1f, 0.05f, 0.3f, 1e-8f, 0.01f};
  torch::manual_seed(9);
  torch::Tensor p0 = torch::randn({n}), g = torch::randn({n}), m0 = torch::randn({n}) * 0.1,
                v0 = torch::rand({n}) * 0.1;
  g[50] = std::numeric_limits<float>::quiet_NaN();
  torch::Tensor pb0 = p0.to(torch::kBFloat16), gb = g.to(torch::kBFloat16);
  // The reference: the documented arithmetic, one operation at a time.
  torch::Tensor p_ref = p0.clone(), m_ref = m0.clone(), v_ref = v0.clone(), pb_ref = pb0.clone();
  torch::Tensor mb_ref = m0.clone(), vb_ref = v0.clone();
  for (int64_t i = begin; i < end; ++i) {
    for (bool bf16 : {false, true}) {
      const float gi = bf16 ? static_cast<float>(gb[i].item<at::BFloat16>()) : g[i].item<float>();
      torch::Tensor &m = bf16 ? mb_ref : m_ref, &v = bf16 ? vb_ref : v_ref;
      volatile float a = m[i].item<float>() * c.beta1, b = c.one_minus_beta1 * gi;
      const float mi = a + b;
      volatile float e = v[i].item<float>() * c.beta2, f = c.one_minus_beta2 * gi;
      volatile float f2 = f * gi;
      const float vi = e + f2;
      m[i] = mi;
      v[i] = vi;
      const float pi = bf16 ? static_cast<float>(pb_ref[i].item<at::BFloat16>()) : p_ref[i].item<float>();
      volatile float decayed = pi * c.decay, num = c.step_size * mi, den0 = std::sqrt(vi) / c.bias2_sqrt;
      volatile float den = den0 + c.eps, q = num / den;
      const float out = decayed - q;
      if (bf16)
        pb_ref[i] = c10::BFloat16(out);
      else
        p_ref[i] = out;
    }
  }
  auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
  const kernels::AdamWKernels& chosen = kernels::adamw_kernels();
  for (auto [name, f32, bf16] : {std::tuple{"generic", &kernels::generic::adamw_f32, &kernels::generic::adamw_bf16},
                                 std::tuple{chosen.isa, chosen.f32, chosen.bf16}}) {
    SCOPED_TRACE(name);
    torch::Tensor p = p0.clone(), m = m0.clone(), v = v0.clone(), pb = pb0.clone(), mb = m0.clone(), vb = v0.clone();
    f32(p.data_ptr<float>(), g.data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), begin, end, c);
    bf16(bits(pb), bits(gb), mb.data_ptr<float>(), vb.data_ptr<float>(), begin, end, c);
    EXPECT_TRUE(torch::equal(p.isnan(), p_ref.isnan()));
    EXPECT_TRUE(torch::equal(p.nan_to_num(0), p_ref.nan_to_num(0)));
    EXPECT_TRUE(torch::equal(m.nan_to_num(0), m_ref.nan_to_num(0)));
    EXPECT_TRUE(torch::equal(v.nan_to_num(0), v_ref.nan_to_num(0)));
    EXPECT_TRUE(torch::equal(pb.view(torch::kShort), pb_ref.view(torch::kShort)));  // NaN → 0x7FC0 too
    EXPECT_TRUE(torch::equal(mb.nan_to_num(0), mb_ref.nan_to_num(0)));
    EXPECT_TRUE(p.isnan()[50].item<bool>());
    EXPECT_EQ(p[0].item<float>(), p0[0].item<float>());  // outside the range: untouched
    EXPECT_EQ(p[end].item<float>(), p0[end].item<float>());
  }
}
