// MKD loss terms: values against hand computations, gradients against central
// finite differences in double precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>

#include "ellm/distill/losses.h"

using namespace ellm;

namespace {

const auto kD = torch::TensorOptions().dtype(torch::kDouble);

// Max |analytic − numeric| gradient of f at x.
double gradient_error(const std::function<torch::Tensor(const torch::Tensor&)>& f, torch::Tensor x) {
  x = x.clone().detach().requires_grad_(true);
  f(x).backward();
  torch::Tensor analytic = x.grad().clone();
  torch::Tensor flat = x.detach().clone().view({-1});
  double worst = 0;
  const double h = 1e-6;
  for (int64_t i = 0; i < flat.numel(); ++i) {
    auto plus = flat.clone(), minus = flat.clone();
    plus[i] += h;
    minus[i] -= h;
    double num = (f(plus.view(x.sizes())).item<double>() - f(minus.view(x.sizes())).item<double>()) / (2 * h);
    worst = std::max(worst, std::abs(num - analytic.view({-1})[i].item<double>()));
  }
  return worst;
}

}  // namespace

TEST(Losses, CrossEntropyByHandSkipsUnlabelled) {
  auto z = torch::tensor({1.0, 2.0, 0.5, 0.0, 0.0, 3.0}, kD).view({2, 3});
  auto y = torch::tensor({1, -1}, torch::kLong);
  double expect = -(2.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5)));
  EXPECT_NEAR(ce_loss(z, y).item<double>(), expect, 1e-12);
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) { return ce_loss(x, y); }, z), 1e-8);
}

TEST(Losses, ScoreKlWithTemperatureByHand) {
  auto z = torch::tensor({0.2, -0.4, 1.0}, kD).view({1, 3});
  auto p = torch::tensor({0.7, 0.2, 0.1}, kD).view({1, 3});
  auto has = torch::ones({1}, kD);
  const double T = 2.0;
  // Teacher at T: p^(1/T) normalised; student: softmax(z/T).
  double pt[3], qs[3], zp = 0, zq = 0;
  for (int k = 0; k < 3; ++k) zp += (pt[k] = std::pow(p[0][k].item<double>(), 1 / T));
  for (int k = 0; k < 3; ++k) zq += (qs[k] = std::exp(z[0][k].item<double>() / T));
  double kl = 0;
  for (int k = 0; k < 3; ++k) kl += pt[k] / zp * std::log((pt[k] / zp) / (qs[k] / zq));
  EXPECT_NEAR(score_kl_loss(z, p, T, has).item<double>(), T * T * kl, 1e-12);
  // Zero when the student equals the teacher; masked rows contribute nothing.
  EXPECT_NEAR(score_kl_loss(torch::log(p), p, 1.0, has).item<double>(), 0.0, 1e-12);
  EXPECT_EQ(score_kl_loss(z, p, T, torch::zeros({1}, kD)).item<double>(), 0.0);
  auto z2 = torch::tensor({0.2, -0.4, 1.0, 2.0, 0.0, -1.0}, kD).view({2, 3});
  auto p2 = torch::tensor({0.7, 0.2, 0.1, 0.1, 0.3, 0.6}, kD).view({2, 3});
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) { return score_kl_loss(x, p2, T, torch::ones({2}, kD)); }, z2), 1e-8);
}

TEST(Losses, ScoreMseAndBceOnExpectedScore) {
  std::vector<double> values = {1.0, 2.0, 3.0};  // rescaled to 0, 0.5, 1
  auto z = torch::tensor({0.0, 0.0, std::log(2.0)}, kD).view({1, 3});  // probs 1/4, 1/4, 1/2
  auto s = expected_score(z, values);
  EXPECT_NEAR(s.item<double>(), 0.25 * 0 + 0.25 * 0.5 + 0.5 * 1.0, 1e-12);
  auto t = normalise_score(torch::tensor({2.5}, kD), values);
  EXPECT_NEAR(t.item<double>(), 0.75, 1e-12);
  auto has = torch::ones({1}, kD);
  EXPECT_NEAR(score_mse_loss(s, t, has).item<double>(), std::pow(0.625 - 0.75, 2), 1e-12);
  EXPECT_NEAR(score_bce_loss(s, t, has).item<double>(), -(0.75 * std::log(0.625) + 0.25 * std::log(0.375)), 1e-12);
  auto z2 = torch::tensor({0.3, -0.2, 0.9, 1.0, 0.1, -2.0}, kD).view({2, 3});
  auto t2 = torch::tensor({0.8, 0.1}, kD);
  auto has2 = torch::ones({2}, kD);
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) { return score_mse_loss(expected_score(x, values), t2, has2); }, z2), 1e-8);
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) { return score_bce_loss(expected_score(x, values), t2, has2); }, z2), 1e-8);
}

TEST(Losses, BioIsPerExampleMeanOverTaggedTokensOnly) {
  // Row 0: two tagged tokens (tags 1 and 0), one untagged (−1). Row 1: no targets at all.
  auto logits = torch::tensor({0.0, 1.0, 0.0, 2.0, 0.0, 0.0, 5.0, 5.0, 5.0,  //
                               1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0},
                              kD)
                    .view({2, 3, 3});
  auto tags = torch::tensor({1, 0, -1, -1, -1, -1}, torch::kLong).view({2, 3});
  double l0 = -(1.0 - std::log(2 + std::exp(1.0)));
  double l1 = -(2.0 - std::log(std::exp(2.0) + 2));
  EXPECT_NEAR(bio_loss(logits, tags).item<double>(), (l0 + l1) / 2, 1e-12);
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) { return bio_loss(x, tags); }, logits), 1e-8);
}

TEST(Losses, AttentionKlAgainstNormalisedFactors) {
  auto a = torch::tensor({0.5, 0.3, 0.2, 0.0}, kD).view({1, 4});
  auto f = torch::tensor({0.6, 0.4, 0.0, 0.0}, kD).view({1, 4});  // zero targets contribute nothing
  double expect = 0.6 * std::log(0.6 / 0.5) + 0.4 * std::log(0.4 / 0.3);
  EXPECT_NEAR(attn_kl_loss(a, f, torch::ones({1}, kD)).item<double>(), expect, 1e-12);
  EXPECT_EQ(attn_kl_loss(a, f, torch::zeros({1}, kD)).item<double>(), 0.0);
  // Through a softmax, as the pooling computes it.
  auto logits = torch::tensor({0.1, -0.3, 0.7, 0.2, 0.0, 1.0}, kD).view({2, 3});
  auto f2 = torch::tensor({0.5, 0.5, 0.0, 0.2, 0.3, 0.5}, kD).view({2, 3});
  EXPECT_LT(gradient_error([&](const torch::Tensor& x) {
              return attn_kl_loss(torch::softmax(x, -1), f2, torch::ones({2}, kD));
            }, logits), 1e-8);
}

TEST(Losses, ConfigDefaultsAndValidation) {
  auto c = DistillLossConfig::from_json(DistillLossConfig::defaults());
  EXPECT_EQ(c.ce, 1.0);
  EXPECT_EQ(c.score, 0.0);
  auto j = DistillLossConfig::defaults();
  j["score_kind"] = "hinge";
  EXPECT_ANY_THROW(DistillLossConfig::from_json(j));
}
