// AdamW and the schedule against PyTorch's own implementation and closed forms.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "ellm/train/adamw.h"
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
