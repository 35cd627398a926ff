#include "ellm/models/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "ellm/util/error.h"

namespace ellm {

namespace {

// splitmix64's output function (Steele et al.): a bijective 64-bit mixer, good enough
// to turn a counter into independent-looking bits (the sequence passes BigCrush).
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// out[i] = keep ? x[i] * scale : 0, mask[i] = keep; element pairs share one 64-bit draw.
template <typename T>
void dropout_kernel(const T* x, T* out, uint8_t* mask, int64_t n, uint64_t seed, uint32_t threshold, float scale) {
  at::parallel_for(0, (n + 1) / 2, 8192, [&](int64_t begin, int64_t end) {
    for (int64_t j = begin; j < end; ++j) {
      const uint64_t h = mix64(seed + static_cast<uint64_t>(j) * 0x9E3779B97F4A7C15ull);
      const int64_t i = 2 * j;
      const bool k0 = static_cast<uint32_t>(h) >= threshold;
      mask[i] = k0;
      out[i] = k0 ? static_cast<T>(static_cast<float>(x[i]) * scale) : static_cast<T>(0);
      if (i + 1 < n) {
        const bool k1 = static_cast<uint32_t>(h >> 32) >= threshold;
        mask[i + 1] = k1;
        out[i + 1] = k1 ? static_cast<T>(static_cast<float>(x[i + 1]) * scale) : static_cast<T>(0);
      }
    }
  });
}

template <typename T>
void masked_scale_kernel(const T* g, const uint8_t* mask, T* out, int64_t n, float scale) {
  at::parallel_for(0, n, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      out[i] = mask[i] ? static_cast<T>(static_cast<float>(g[i]) * scale) : static_cast<T>(0);
  });
}

at::Tensor masked_scale(const at::Tensor& g_in, const at::Tensor& mask, double scale) {
  at::Tensor g = g_in.contiguous();
  at::Tensor out = at::empty_like(g, at::MemoryFormat::Contiguous);
  const int64_t n = g.numel();
  const auto* m = mask.data_ptr<uint8_t>();
  const float s = static_cast<float>(scale);
  switch (g.scalar_type()) {
    case at::kFloat: masked_scale_kernel(g.data_ptr<float>(), m, out.data_ptr<float>(), n, s); break;
    case at::kBFloat16:
      masked_scale_kernel(g.data_ptr<at::BFloat16>(), m, out.data_ptr<at::BFloat16>(), n, s);
      break;
    case at::kDouble: {
      // fp64 (tests' gradient checks): through ATen, in double.
      return g_in * mask.view(g_in.sizes()).to(at::kDouble) * scale;
    }
    default: fail("fast_dropout: unsupported gradient dtype {}", c10::toString(g.scalar_type()));
  }
  return out;
}

class FastDropoutFn : public torch::autograd::Function<FastDropoutFn> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x_in, double p) {
    at::Tensor x = x_in.contiguous();
    uint64_t seed;
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      seed = at::check_generator<at::CPUGeneratorImpl>(gen)->random64();
    }
    // keep ⇔ the draw ≥ p·2³² (p < 1 here, so the threshold fits in 32 bits).
    const auto threshold = static_cast<uint32_t>(std::min(std::ldexp(p, 32), 4294967295.0));
    const double scale = 1.0 / (1.0 - p);
    at::Tensor out = at::empty_like(x, at::MemoryFormat::Contiguous);
    at::Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kByte));
    const int64_t n = x.numel();
    auto* m = mask.data_ptr<uint8_t>();
    const float s = static_cast<float>(scale);
    switch (x.scalar_type()) {
      case at::kFloat: dropout_kernel(x.data_ptr<float>(), out.data_ptr<float>(), m, n, seed, threshold, s); break;
      case at::kBFloat16:
        dropout_kernel(x.data_ptr<at::BFloat16>(), out.data_ptr<at::BFloat16>(), m, n, seed, threshold, s);
        break;
      case at::kDouble: {
        dropout_kernel(x.data_ptr<double>(), out.data_ptr<double>(), m, n, seed, threshold, s);
        out = x * mask.to(at::kDouble) * scale;  // exact double scaling
        break;
      }
      default: fail("fast_dropout: unsupported dtype {}", c10::toString(x.scalar_type()));
    }
    ctx->save_for_backward({mask});
    ctx->saved_data["scale"] = scale;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    at::Tensor mask = ctx->get_saved_variables()[0];
    return {masked_scale(grads[0], mask, ctx->saved_data["scale"].toDouble()), at::Tensor()};
  }
};

}  // namespace

at::Tensor fast_dropout(const at::Tensor& x, double p, bool training) {
  ELLM_CHECK(p >= 0 && p <= 1, "dropout probability must be in [0, 1], got {}", p);
  if (!training || p == 0) return x;
  if (p == 1) return x * 0;
  const auto t = x.scalar_type();
  if (!x.device().is_cpu() || (t != at::kFloat && t != at::kBFloat16 && t != at::kDouble)) return torch::dropout(x, p, true);
  return FastDropoutFn::apply(x, p);
}

}  // namespace ellm
