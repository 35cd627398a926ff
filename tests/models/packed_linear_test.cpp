// packed_linear (inference linear layers with the weight packed once) against a float64
// computation of x · wᵀ + b: row counts around the kernels' 8-row tile, K odd and even, N
// around the 32-column panel, rows with a stride, bias or none, fp32 and bf16; the same result
// on one thread and two; bf16 rounding; the portable kernel against the chosen one; and the
// cases where it must step aside or refuse to pack.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "ellm/models/packed_linear.h"
#include "../../src/models/kernels/packed_linear_kernel.h"

using namespace ellm;

namespace {

torch::Tensor linear_fp64(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  auto d = [](const torch::Tensor& t) { return t.to(torch::kFloat64); };
  torch::Tensor y = torch::matmul(d(x), d(w).t());
  return b.defined() ? y + d(b) : y;
}

// fp32: summation order only, relative to Σ|x·w|. bf16: inputs are exact in fp32, the sum is
// fp32 and the result is rounded once (half an ulp of bf16 is 2⁻⁹ relative).
torch::Tensor tolerance(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& ref, c10::ScalarType dtype) {
  torch::Tensor magnitude = torch::matmul(x.to(torch::kFloat64).abs(), w.to(torch::kFloat64).abs().t());
  return dtype == torch::kFloat32 ? 1e-6 * magnitude + 1e-6 : ref.abs() / 256 + 1e-5 * magnitude + 1e-6;
}

void expect_matches_fp64(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b,
                  const std::string& what) {
  torch::Tensor ref = linear_fp64(x, w, b);
  torch::Tensor err = (y.to(torch::kFloat64) - ref).abs();
  EXPECT_TRUE((err <= tolerance(x, w, ref, y.scalar_type())).all().item<bool>())
      << what << " max error " << err.max().item<double>();
}

}  // namespace

TEST(PackedLinear, MatchesFloat64AcrossTilesPanelsAndTails) {
  torch::InferenceMode guard;
  torch::manual_seed(3);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t K : {1, 7, 16, 33, 256}) {
      for (int64_t N : {1, 31, 32, 33, 77}) {
        for (int64_t M : {1, 2, 7, 8, 9, 17, 64}) {
          for (bool with_bias : {false, true}) {
            auto x = torch::randn({M, K}).to(dtype), w = torch::randn({N, K}).to(dtype);
            torch::Tensor b = with_bias ? torch::randn({N}).to(dtype) : torch::Tensor();
            torch::Tensor y = packed_linear(x, pack_linear(w, b));
            const std::string what = fmt::format("{} M={} N={} K={} bias={}", c10::toString(dtype), M, N, K, with_bias);
            ASSERT_TRUE(y.defined()) << what;
            ASSERT_EQ(y.scalar_type(), dtype) << what;
            ASSERT_EQ(y.sizes(), (std::vector<int64_t>{M, N})) << what;
            expect_matches_fp64(y, x, w, b, what);
          }
        }
      }
    }
  }
}

TEST(PackedLinear, KeepsLeadingShapeAndReadsStridedRows) {
  torch::InferenceMode guard;
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // [B, T, K] rows of a wider buffer: the last dim contiguous, rows 80 apart.
    auto x = torch::randn({2, 5, 80}).to(dtype).narrow(-1, 0, 48);
    auto w = torch::randn({40, 48}).to(dtype), b = torch::randn({40}).to(dtype);
    torch::Tensor y = packed_linear(x, pack_linear(w, b));
    ASSERT_TRUE(y.defined());
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 40}));
    expect_matches_fp64(y, x, w, b, c10::toString(dtype));
  }
}

// A slice of the output features on panel boundaries is a view of the panels (no copy) and
// computes those features; a slice that would split a panel is refused (undefined).
TEST(PackedLinear, OutputSlicesOnPanelBoundaries) {
  torch::InferenceMode guard;
  torch::manual_seed(6);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto x = torch::randn({9, 40}).to(dtype), w = torch::randn({96 + 20, 40}).to(dtype), b = torch::randn({116}).to(dtype);
    PackedLinear packed = pack_linear(w, b);
    for (auto [first, count] : {std::pair<int64_t, int64_t>{0, 32}, {32, 64}, {64, 52}, {96, 20}}) {
      const std::string what = fmt::format("{} [{}, {})", c10::toString(dtype), first, first + count);
      PackedLinear part = packed_output_slice(packed, first, count);
      ASSERT_TRUE(part.defined()) << what;
      EXPECT_EQ(part.panels.data_ptr(), static_cast<char*>(packed.panels.data_ptr()) +
                                            (first / 32) * packed.panels[0].numel() * packed.panels.element_size());
      torch::Tensor y = packed_linear(x, part);
      ASSERT_EQ(y.sizes(), (std::vector<int64_t>{9, count})) << what;
      expect_matches_fp64(y, x, w.narrow(0, first, count), b.narrow(0, first, count), what);
    }
    EXPECT_FALSE(packed_output_slice(packed, 16, 32).defined());  // starts inside a panel
    EXPECT_FALSE(packed_output_slice(packed, 32, 40).defined());  // ends inside one, before the end
    EXPECT_THROW(packed_output_slice(packed, 96, 21), std::exception);  // past the last feature
  }
}

// Units of work change with the thread count (rows are split when panels are few), but every
// output is one row's dot product over k in one order: the bits must not change.
TEST(PackedLinear, SameBitsOnOneThreadAndTwo) {
  torch::InferenceMode guard;
  torch::manual_seed(5);
  const int before = at::get_num_threads();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t N : {64, 768}) {
      auto x = torch::randn({200, 256}).to(dtype), w = torch::randn({N, 256}).to(dtype), b = torch::randn({N}).to(dtype);
      PackedLinear p = pack_linear(w, b);
      at::set_num_threads(1);
      torch::Tensor one = packed_linear(x, p);
      at::set_num_threads(2);
      torch::Tensor two = packed_linear(x, p);
      ASSERT_TRUE(one.defined() && two.defined());
      EXPECT_TRUE(torch::equal(one, two)) << c10::toString(dtype) << " N=" << N;
      expect_matches_fp64(two, x, w, b, c10::toString(dtype));
    }
  }
  at::set_num_threads(before);
}

TEST(PackedLinear, Bf16RoundsToNearestEvenAndKeepsNaN) {
  torch::InferenceMode guard;
  // 1 + 2^-8 lies halfway between two bf16 values (1 and 1 + 2^-7): nearest even is 1.
  // 1 + 3·2^-8 lies halfway between 1 + 2^-7 and 1 + 2^-6: nearest even is 1 + 2^-6.
  // The bias (fp32 in the pack) contributes the 1, x·w the half step.
  PackedLinear p = pack_linear(torch::ones({1, 1}).to(torch::kBFloat16), torch::ones({1}).to(torch::kBFloat16));
  auto run = [&](float v) {
    return packed_linear(torch::tensor({{v}}).to(torch::kBFloat16), p).to(torch::kFloat32).item<float>();
  };
  EXPECT_EQ(run(std::ldexp(1.0f, -8)), 1.0f);
  EXPECT_EQ(run(3 * std::ldexp(1.0f, -8)), 1.0f + std::ldexp(1.0f, -6));
  EXPECT_TRUE(std::isnan(run(std::numeric_limits<float>::quiet_NaN())));
}

TEST(PackedLinear, StepsAsideWhereItDoesNotApply) {
  torch::manual_seed(6);
  auto w = torch::randn({8, 16}), b = torch::randn({8});
  PackedLinear p = pack_linear(w, b);
  {
    torch::InferenceMode guard;
    EXPECT_FALSE(packed_linear(torch::randn({2, 16}).to(torch::kFloat64), p).defined());   // other dtype
    EXPECT_FALSE(packed_linear(torch::randn({2, 16}).to(torch::kBFloat16), p).defined());  // not the panels' dtype
    EXPECT_FALSE(packed_linear(torch::randn({2, 15}), p).defined());                      // K mismatch
    EXPECT_FALSE(packed_linear(torch::randn({16, 2}).t(), p).defined());                  // last dim strided
    EXPECT_FALSE(packed_linear(torch::randn({2, 16}), PackedLinear{}).defined());         // nothing packed
    EXPECT_FALSE(packed_linear(torch::Tensor(), p).defined());
  }
  EXPECT_FALSE(packed_linear(torch::randn({2, 16}).requires_grad_(true), p).defined());  // autograd wants torch::linear
  EXPECT_STRNE(packed_linear_isa(), "");
}

TEST(PackedLinear, RefusesToPackWhatItCannotHold) {
  EXPECT_THROW(pack_linear(torch::randn({4})), std::exception);
  EXPECT_THROW(pack_linear(torch::randn({4, 3}).to(torch::kFloat64)), std::exception);
  EXPECT_THROW(pack_linear(torch::randn({4, 3}), torch::randn({5})), std::exception);
  try {
    pack_linear(torch::randn({4, 3}).to(torch::kHalf));
    FAIL() << "fp16 was packed";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("Half"), std::string::npos) << e.what();
  }
}

// The portable kernels (what a CPU without AVX-512 runs) against the chosen ones, on panels
// packed here: 70 rows (8-row tiles and a tail), 45 columns (a part panel), odd K.
TEST(PackedLinear, PortableKernelsAgreeWithTheChosenOnes) {
  torch::InferenceMode guard;
  torch::manual_seed(7);
  const int64_t M = 70, K = 77, N = 45;
  const kernels::PackedLinearKernels& chosen = kernels::packed_linear_kernels();
  auto x = torch::randn({M, K}), w = torch::randn({N, K}), b = torch::randn({N});
  PackedLinear p = pack_linear(w, b);
  const int64_t P = p.panels.size(0);
  auto y = torch::empty({M, N}), y_chosen = torch::empty({M, N});
  kernels::generic::packed_linear_f32(x.data_ptr<float>(), K, K, p.panels.data_ptr<float>(), p.bias.data_ptr<float>(),
                                      y.data_ptr<float>(), N, N, 0, M, 0, P);
  chosen.f32(x.data_ptr<float>(), K, K, p.panels.data_ptr<float>(), p.bias.data_ptr<float>(), y_chosen.data_ptr<float>(),
             N, N, 0, M, 0, P);
  expect_matches_fp64(y, x, w, b, "generic fp32");
  EXPECT_TRUE(torch::allclose(y, y_chosen, 1e-5, 1e-5));

  auto bits = [](const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
  auto xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16), bb = b.to(torch::kBFloat16);
  PackedLinear pb = pack_linear(wb, bb);
  auto yb = torch::empty({M, N}, torch::kBFloat16), yb_chosen = torch::empty({M, N}, torch::kBFloat16);
  kernels::generic::packed_linear_bf16(bits(xb), K, K, bits(pb.panels), pb.bias.data_ptr<float>(), bits(yb), N, N, 0, M,
                                       0, P);
  chosen.bf16(bits(xb), K, K, bits(pb.panels), pb.bias.data_ptr<float>(), bits(yb_chosen), N, N, 0, M, 0, P);
  expect_matches_fp64(yb, xb, wb, bb, "generic bf16");
  expect_matches_fp64(yb_chosen, xb, wb, bb, std::string("bf16 ") + chosen.isa);
}
