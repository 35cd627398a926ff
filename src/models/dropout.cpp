#include "ellm/models/dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <mutex>

#include "ellm/util/error.h"
#include "kernels/dropout_kernel.h"

namespace ellm {

namespace {

// Elements per parallel work unit: ~8 µs of a kernel's loop, worth a thread's wake-up.
constexpr int64_t kGrain = 16384;

uint16_t* bits(const at::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); }

at::Tensor masked_scale(const at::Tensor& g_in, const at::Tensor& mask, double scale) {
  at::Tensor g = g_in.contiguous();
  at::Tensor out = at::empty_like(g, at::MemoryFormat::Contiguous);
  const int64_t n = g.numel();
  const auto* m = mask.data_ptr<uint8_t>();
  const float s = static_cast<float>(scale);
  const kernels::DropoutKernels& k = kernels::dropout_kernels();
  switch (g.scalar_type()) {
    case at::kFloat:
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) {
        k.masked_scale_f32(g.data_ptr<float>(), m, out.data_ptr<float>(), b, e, s);
      });
      break;
    case at::kBFloat16:
      at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { k.masked_scale_bf16(bits(g), m, bits(out), b, e, s); });
      break;
    case at::kDouble:  // fp64 (tests' gradient checks): through ATen, in double
      return g_in * mask.view(g_in.sizes()).to(at::kDouble) * scale;
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
    const kernels::DropoutKernels& k = kernels::dropout_kernels();
    // Units start at even elements: a pair shares one draw.
    auto pairs = [&](auto&& f) {
      at::parallel_for(0, (n + 1) / 2, kGrain / 2, [&](int64_t b, int64_t e) { f(2 * b, std::min(n, 2 * e)); });
    };
    switch (x.scalar_type()) {
      case at::kFloat:
        pairs([&](int64_t b, int64_t e) {
          k.dropout_f32(x.data_ptr<float>(), out.data_ptr<float>(), m, b, e, seed, threshold, s);
        });
        break;
      case at::kBFloat16:
        pairs([&](int64_t b, int64_t e) { k.dropout_bf16(bits(x), bits(out), m, b, e, seed, threshold, s); });
        break;
      case at::kDouble: {  // the fp32 kernel draws the mask; the scaling is exact in double
        at::Tensor scratch = at::zeros(x.sizes(), x.options().dtype(at::kFloat));
        pairs([&](int64_t b, int64_t e) {
          k.dropout_f32(scratch.data_ptr<float>(), scratch.data_ptr<float>(), m, b, e, seed, threshold, s);
        });
        out = x * mask.to(at::kDouble) * scale;
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
