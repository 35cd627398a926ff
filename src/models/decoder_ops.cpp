// Fused decoder operations: CPU row loops, autograd functions, plain fallbacks.
#include "ellm/models/decoder_ops.h"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "kernels/attention_kernel.h"
#include "kernels/softmax_rows_kernel.h"

namespace ellm::decoder_ops {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Accumulation type: fp32 for fp32 / bf16 / fp16, fp64 for fp64.
template <typename T>
using acc_t = std::conditional_t<std::is_same<T, double>::value, double, float>;

bool kernel_dtype(const Tensor& t) {
  auto s = t.scalar_type();
  return s == torch::kFloat32 || s == torch::kBFloat16 || s == torch::kFloat16 || s == torch::kFloat64;
}

// The CPU loops apply: every tensor on the CPU, in one supported dtype, dense.
bool use_kernel(std::initializer_list<const Tensor*> ts) {
  const Tensor* first = *ts.begin();
  for (const Tensor* t : ts) {
    if (!t->defined() || !t->device().is_cpu() || !kernel_dtype(*t) || t->scalar_type() != first->scalar_type() ||
        t->layout() != torch::kStrided)
      return false;
  }
  return true;
}

bool wants_grad(std::initializer_list<const Tensor*> ts) {
  if (!torch::GradMode::is_enabled()) return false;
  for (const Tensor* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

// Rows per task such that a task holds at least ~16k elements: small (decode-step) inputs run
// on the calling thread without waking the pool.
int64_t grain_rows(int64_t row_len) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(row_len, 1)); }

// Leading dims addressable as rows of one stride, last dim contiguous: the row stride, or -1.
int64_t row_stride(const Tensor& t) {
  if (t.dim() == 0 || t.stride(-1) != 1) return -1;
  if (t.dim() == 1) return t.size(0);
  for (int64_t d = 0; d + 2 < t.dim(); ++d)
    if (t.size(d) > 1 && t.stride(d) != t.stride(d + 1) * t.size(d + 1)) return -1;
  return t.stride(-2);
}

// ---------------------------------------------------------------- RMSNorm

Tensor rms_norm_plain(const Tensor& x, const Tensor& weight, double eps) {
  Tensor h = x.scalar_type() == torch::kFloat64 ? x : x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * h.to(x.scalar_type());
}

// y = w * round(x * r), r = 1/sqrt(mean(x²) + eps) per row; r is returned for backward.
void rms_norm_forward_kernel(const Tensor& x, const Tensor& w, double eps, Tensor& y, Tensor& rinv) {
  const int64_t H = x.size(-1), R = x.numel() / H;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ellm_rms_norm", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t* xp = x.data_ptr<scalar_t>();
    const scalar_t* wp = w.data_ptr<scalar_t>();
    scalar_t* yp = y.data_ptr<scalar_t>();
    acc* rp = rinv.data_ptr<acc>();
    at::parallel_for(0, R, grain_rows(H), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const scalar_t* xr = xp + r * H;
        scalar_t* yr = yp + r * H;
        acc ss = 0;
        for (int64_t i = 0; i < H; ++i) {
          acc v = static_cast<acc>(xr[i]);
          ss += v * v;
        }
        acc ri = acc(1) / std::sqrt(ss / static_cast<acc>(H) + static_cast<acc>(eps));
        rp[r] = ri;
        for (int64_t i = 0; i < H; ++i) {
          scalar_t n = static_cast<scalar_t>(static_cast<acc>(xr[i]) * ri);
          yr[i] = static_cast<scalar_t>(static_cast<acc>(wp[i]) * static_cast<acc>(n));
        }
      }
    });
  });
}

struct RMSNormFn : public torch::autograd::Function<RMSNormFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& w, double eps) {
    Tensor xc = x.contiguous(), wc = w.contiguous();
    Tensor y = torch::empty_like(xc);
    auto acc_dtype = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
    Tensor rinv = torch::empty({xc.numel() / xc.size(-1)}, xc.options().dtype(acc_dtype));
    rms_norm_forward_kernel(xc, wc, eps, y, rinv);
    ctx->save_for_backward({xc, wc, rinv});
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &w = saved[1], &rinv = saved[2];
    Tensor gy = grads[0].contiguous();
    const int64_t H = x.size(-1), R = x.numel() / H;
    Tensor gx = torch::empty_like(x);
    Tensor gw;
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "ellm_rms_norm_backward", [&] {
      using acc = acc_t<scalar_t>;
      const scalar_t *xp = x.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>(), *gp = gy.data_ptr<scalar_t>();
      const acc* rp = rinv.data_ptr<acc>();
      scalar_t* gxp = gx.data_ptr<scalar_t>();
      at::parallel_for(0, R, grain_rows(H), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const scalar_t *xr = xp + r * H, *gr = gp + r * H;
          scalar_t* gxr = gxp + r * H;
          const acc ri = rp[r];
          acc dot = 0;
          for (int64_t i = 0; i < H; ++i) dot += static_cast<acc>(gr[i]) * static_cast<acc>(wp[i]) * static_cast<acc>(xr[i]);
          const acc c = dot * ri * ri * ri / static_cast<acc>(H);
          for (int64_t i = 0; i < H; ++i)
            gxr[i] = static_cast<scalar_t>(static_cast<acc>(gr[i]) * static_cast<acc>(wp[i]) * ri -
                                           static_cast<acc>(xr[i]) * c);
        }
      });
      // Weight gradient (unless frozen): sum over rows of gy * round(x * r), by column blocks.
      if (!ctx->needs_input_grad(1)) return;
      gw = torch::empty_like(w);
      scalar_t* gwp = gw.data_ptr<scalar_t>();
      const int64_t block = 32;
      at::parallel_for(0, (H + block - 1) / block, std::max<int64_t>(1, 16384 / std::max<int64_t>(R * block, 1)),
                       [&](int64_t b0, int64_t b1) {
        for (int64_t blk = b0; blk < b1; ++blk) {
          const int64_t i0 = blk * block, i1 = std::min(H, i0 + block);
          acc sums[block] = {};
          for (int64_t r = 0; r < R; ++r) {
            const scalar_t *xr = xp + r * H, *gr = gp + r * H;
            const acc ri = rp[r];
            for (int64_t i = i0; i < i1; ++i)
              sums[i - i0] += static_cast<acc>(gr[i]) * static_cast<acc>(static_cast<scalar_t>(static_cast<acc>(xr[i]) * ri));
          }
          for (int64_t i = i0; i < i1; ++i) gwp[i] = static_cast<scalar_t>(sums[i - i0]);
        }
      });
    });
    return {gx, gw, Tensor()};
  }
};

// ---------------------------------------------------------------- RoPE

Tensor rotate_half(const Tensor& x) {
  int64_t half = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
}

std::pair<Tensor, Tensor> rope_qk_plain(const Tensor& q_in, const Tensor& k_in, const Tensor& cos, const Tensor& sin,
                                        double q_scale) {
  Tensor c = cos.unsqueeze(2), s = sin.unsqueeze(2);  // [B,T,1,D]
  Tensor q = q_in * c + rotate_half(q_in) * s;
  if (q_scale != 1.0) q = q * q_scale;
  Tensor k = k_in * c + rotate_half(k_in) * s;
  return {q.transpose(1, 2).contiguous(), k.transpose(1, 2).contiguous()};
}

// Forward (transpose = false): [B,T,N,D] strided inputs → [B,N,T,D] contiguous outputs.
// Backward (transpose = true): [B,N,T,D] contiguous gradients → [B,T,N,D] contiguous, through
// the transposed rotation. Queries (the first Nq heads) are scaled by q_scale.
void rope_kernel(const Tensor& q_src, const Tensor& k_src, const Tensor& cos, const Tensor& sin, double q_scale,
                 Tensor& q_dst, Tensor& k_dst, bool transpose) {
  // Shapes in the [B,T,N,D] frame.
  const int64_t B = q_src.size(0), T = transpose ? q_src.size(2) : q_src.size(1);
  const int64_t Nq = transpose ? q_src.size(1) : q_src.size(2);
  const int64_t Nk = transpose ? k_src.size(1) : k_src.size(2);
  const int64_t D = q_src.size(3), half = D / 2, N = Nq + Nk;
  const int64_t cb = cos.size(0) == 1 ? 0 : cos.stride(0), ct = cos.stride(1);
  const int64_t sb = sin.size(0) == 1 ? 0 : sin.stride(0), st = sin.stride(1);
  // Element strides of source and destination over (b, t, head), per q / k.
  struct Frame {
    int64_t b, t, h;
  };
  auto frame = [&](const Tensor& x, bool bnt) {  // bnt: x is [B,N,T,D]
    return bnt ? Frame{x.stride(0), x.stride(2), x.stride(1)} : Frame{x.stride(0), x.stride(1), x.stride(2)};
  };
  const Frame qs = frame(q_src, transpose), ks = frame(k_src, transpose);
  const Frame qd = frame(q_dst, !transpose), kd = frame(k_dst, !transpose);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q_src.scalar_type(), "ellm_rope", [&] {
    using acc = acc_t<scalar_t>;
    const scalar_t *cp = cos.data_ptr<scalar_t>(), *sp = sin.data_ptr<scalar_t>();
    const scalar_t *qsp = q_src.data_ptr<scalar_t>(), *ksp = k_src.data_ptr<scalar_t>();
    scalar_t *qdp = q_dst.data_ptr<scalar_t>(), *kdp = k_dst.data_ptr<scalar_t>();
    const acc qscale = static_cast<acc>(q_scale);
    at::parallel_for(0, B * T * N, grain_rows(D), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t n = r % N, t = (r / N) % T, b = r / (N * T);
        const bool is_q = n < Nq;
        const int64_t h = is_q ? n : n - Nq;
        const Frame &fs = is_q ? qs : ks, &fd = is_q ? qd : kd;
        const scalar_t* x = (is_q ? qsp : ksp) + b * fs.b + t * fs.t + h * fs.h;
        scalar_t* y = (is_q ? qdp : kdp) + b * fd.b + t * fd.t + h * fd.h;
        const acc scale = is_q ? qscale : acc(1);
        const scalar_t* c = cp + b * cb + t * ct;
        const scalar_t* s = sp + b * sb + t * st;
        for (int64_t i = 0; i < half; ++i) {
          const acc x1 = static_cast<acc>(x[i]), x2 = static_cast<acc>(x[i + half]);
          const acc c1 = static_cast<acc>(c[i]), c2 = static_cast<acc>(c[i + half]);
          const acc s1 = static_cast<acc>(s[i]), s2 = static_cast<acc>(s[i + half]);
          if (!transpose) {
            y[i] = static_cast<scalar_t>((x1 * c1 - x2 * s1) * scale);
            y[i + half] = static_cast<scalar_t>((x2 * c2 + x1 * s2) * scale);
          } else {
            y[i] = static_cast<scalar_t>((x1 * c1 + x2 * s2) * scale);
            y[i + half] = static_cast<scalar_t>((x2 * c2 - x1 * s1) * scale);
          }
        }
      }
    });
  });
}

struct RopeFn : public torch::autograd::Function<RopeFn> {
  static variable_list forward(AutogradContext* ctx, const Tensor& q_in, const Tensor& k_in, const Tensor& cos,
                               const Tensor& sin, double q_scale) {
    Tensor q = torch::empty({q_in.size(0), q_in.size(2), q_in.size(1), q_in.size(3)}, q_in.options());
    Tensor k = torch::empty({k_in.size(0), k_in.size(2), k_in.size(1), k_in.size(3)}, k_in.options());
    rope_kernel(q_in, k_in, cos, sin, q_scale, q, k, /*transpose=*/false);
    ctx->save_for_backward({cos, sin});
    ctx->saved_data["q_scale"] = q_scale;
    ctx->saved_data["q_shape"] = q.sizes().vec();
    ctx->saved_data["k_shape"] = k.sizes().vec();
    return {q, k};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    double q_scale = ctx->saved_data["q_scale"].toDouble();
    Tensor gq = grads[0], gk = grads[1];
    // An unused output's gradient arrives undefined: zeros of its shape.
    const auto& like = gq.defined() ? gq : gk;
    if (!gq.defined()) gq = torch::zeros(ctx->saved_data["q_shape"].toIntVector(), like.options());
    if (!gk.defined()) gk = torch::zeros(ctx->saved_data["k_shape"].toIntVector(), like.options());
    gq = gq.contiguous();
    gk = gk.contiguous();
    Tensor dq = torch::empty({gq.size(0), gq.size(2), gq.size(1), gq.size(3)}, gq.options());
    Tensor dk = torch::empty({gk.size(0), gk.size(2), gk.size(1), gk.size(3)}, gk.options());
    rope_kernel(gq, gk, saved[0], saved[1], q_scale, dq, dk, /*transpose=*/true);
    return {dq, dk, Tensor(), Tensor(), Tensor()};
  }
};

// ---------------------------------------------------------------- SwiGLU

template <typename acc>
inline acc sigmoid(acc g) {
  return acc(1) / (acc(1) + std::exp(-g));
}

struct SwiGLUFn : public torch::autograd::Function<SwiGLUFn> {
  static Tensor run(const Tensor& g, const Tensor& u) {
    const int64_t I = g.size(-1), R = g.numel() / std::max<int64_t>(I, 1);
    const int64_t gs = row_stride(g), us = row_stride(u);
    auto shape = g.sizes().vec();
    Tensor y = torch::empty(shape, g.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "ellm_swiglu", [&] {
      using acc = acc_t<scalar_t>;
      const scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>();
      scalar_t* yp = y.data_ptr<scalar_t>();
      at::parallel_for(0, R, grain_rows(I), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const scalar_t *gr = gp + r * gs, *ur = up + r * us;
          scalar_t* yr = yp + r * I;
          for (int64_t i = 0; i < I; ++i) {
            const acc gv = static_cast<acc>(gr[i]);
            const scalar_t silu = static_cast<scalar_t>(gv / (acc(1) + std::exp(-gv)));
            yr[i] = static_cast<scalar_t>(static_cast<acc>(silu) * static_cast<acc>(ur[i]));
          }
        }
      });
    });
    return y;
  }

  static Tensor forward(AutogradContext* ctx, const Tensor& g, const Tensor& u) {
    ctx->save_for_backward({g, u});
    return run(g, u);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const Tensor &g = saved[0], &u = saved[1];
    Tensor gy = grads[0].contiguous();
    const int64_t I = g.size(-1), R = g.numel() / std::max<int64_t>(I, 1);
    const int64_t gs = row_stride(g), us = row_stride(u);
    Tensor dg = torch::empty(g.sizes(), g.options()), du = torch::empty(u.sizes(), u.options());
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "ellm_swiglu_backward", [&] {
      using acc = acc_t<scalar_t>;
      const scalar_t *gp = g.data_ptr<scalar_t>(), *up = u.data_ptr<scalar_t>(), *yp = gy.data_ptr<scalar_t>();
      scalar_t *dgp = dg.data_ptr<scalar_t>(), *dup = du.data_ptr<scalar_t>();
      at::parallel_for(0, R, grain_rows(I), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const scalar_t *gr = gp + r * gs, *ur = up + r * us, *yr = yp + r * I;
          scalar_t *dgr = dgp + r * I, *dur = dup + r * I;
          for (int64_t i = 0; i < I; ++i) {
            const acc gv = static_cast<acc>(gr[i]), gyv = static_cast<acc>(yr[i]);
            const acc s = sigmoid(gv);
            dur[i] = static_cast<scalar_t>(gyv * static_cast<acc>(static_cast<scalar_t>(gv * s)));
            dgr[i] = static_cast<scalar_t>(gyv * static_cast<acc>(ur[i]) * s * (acc(1) + gv * (acc(1) - s)));
          }
        }
      });
    });
    return {dg, du};
  }
};

// ---------------------------------------------------------------- linear + cross-entropy

struct CrossEntropyPass {
  Tensor loss, grad_hidden, grad_weight, count;
};

// The loss summed over the rows of logits [n,V] (fp32 or bf16, contiguous) against targets
// [n] (ignore_index: no loss), by the softmax-row kernels; with `grads` each row becomes
// d loss / d logits in place (softmax − one-hot, computed in fp32, rounded once; rows
// without a target: 0). Targets are in [0, V) (the caller checked).
double softmax_rows_loss(Tensor& logits, const Tensor& targets, int64_t ignore_index, bool grads) {
  const int64_t n = logits.size(0), V = logits.size(1);
  std::vector<double> row_loss(n, 0.0);
  const auto& k = kernels::softmax_row_kernels();
  const int64_t* tp = targets.data_ptr<int64_t>();
  auto rows = [&](auto* base) {  // float* or at::BFloat16* (the kernels take bf16 as raw uint16 bits)
    using T = std::remove_pointer_t<decltype(base)>;
    constexpr bool f32 = std::is_same_v<T, float>;
    at::parallel_for(0, n, grain_rows(V), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        T* row = base + r * V;
        if (tp[r] == ignore_index) {
          if (grads) std::fill(row, row + V, T(0));
          continue;
        }
        const float lse = f32 ? k.logsumexp_f32(reinterpret_cast<const float*>(row), V)
                              : k.logsumexp_bf16(reinterpret_cast<const uint16_t*>(row), V);
        row_loss[r] = static_cast<double>(lse) - static_cast<float>(row[tp[r]]);
        if (!grads) continue;
        if (f32) k.softmax_f32(reinterpret_cast<float*>(row), V, lse);
        else k.softmax_bf16(reinterpret_cast<uint16_t*>(row), V, lse);
        row[tp[r]] = static_cast<T>(static_cast<float>(row[tp[r]]) - 1.0f);
      }
    });
  };
  if (logits.scalar_type() == torch::kFloat) rows(logits.data_ptr<float>());
  else rows(logits.data_ptr<at::BFloat16>());
  double loss = 0;
  for (double l : row_loss) loss += l;
  return loss;
}

// One pass over the rows in chunks: the loss, and the unscaled gradients when asked for.
CrossEntropyPass linear_cross_entropy_pass(const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                                           int64_t ignore_index, bool need_h, bool need_w) {
  torch::NoGradGuard no_grad;
  const int64_t N = hidden.size(0), V = weight.size(0);
  const auto acc_dtype = hidden.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  // ~8M logits per chunk (32 MB in fp32): small next to the activations, and big enough for
  // efficient matmuls: in 255-row chunks (2M logits of an 8,000-word vocabulary) the three
  // bf16 head matmuls of a 1,020-row batch took 45 ms against 41 ms in one chunk (medians,
  // 2 threads, an interleaved scratch microbenchmark in python3-torch, same ATen).
  const int64_t chunk = std::clamp<int64_t>((int64_t{8} << 20) / std::max<int64_t>(V, 1), 16, std::max<int64_t>(N, 16));
  CrossEntropyPass out;
  Tensor valid_all = targets != ignore_index;
  out.count = valid_all.sum().to(acc_dtype);
  const bool any_ignored = out.count.item<double>() < static_cast<double>(N);
  out.loss = torch::zeros({}, hidden.options().dtype(acc_dtype));
  if (need_h) out.grad_hidden = torch::empty_like(hidden);
  if (need_w)  // filled by the first chunk's matmul (zeros when there are no rows)
    out.grad_weight = N == 0 ? torch::zeros(weight.sizes(), weight.options().dtype(acc_dtype))
                             : torch::empty(weight.sizes(), weight.options().dtype(acc_dtype));
  Tensor wt = weight.t();
  // fp32/bf16 on the CPU: the softmax-row kernels work on the logits in place.
  const bool row_kernels = hidden.device().is_cpu() &&
                           (hidden.scalar_type() == torch::kFloat || hidden.scalar_type() == torch::kBFloat16);
  if (row_kernels && N > 0) {
    Tensor valid_targets = targets.masked_select(valid_all);
    TORCH_CHECK(valid_targets.numel() == 0 ||
                    (valid_targets.min().item<int64_t>() >= 0 && valid_targets.max().item<int64_t>() < V),
                "linear_cross_entropy: a target is outside the vocabulary [0, ", V, ")");
  }
  for (int64_t s = 0; s < N; s += chunk) {
    const int64_t n = std::min(chunk, N - s);
    Tensor h = hidden.narrow(0, s, n);
    const bool grads = need_h || need_w;
    Tensor pc;  // d loss / d logits = softmax − one-hot (rows without a target: 0), hidden's dtype
    if (row_kernels) {
      pc = torch::mm(h, wt);  // [n,V], turned into the gradient in place
      out.loss.add_(softmax_rows_loss(pc, targets.narrow(0, s, n).contiguous(), ignore_index, grads));
    } else {
      // log_softmax is one vectorised kernel (logsumexp and a broadcast subtraction cost
      // several times more here).
      Tensor logp = torch::log_softmax(torch::mm(h, wt).to(acc_dtype), -1);  // [n,V]
      Tensor t = targets.narrow(0, s, n).unsqueeze(1);
      Tensor invalid;
      if (any_ignored) {
        invalid = valid_all.narrow(0, s, n).logical_not().unsqueeze(1);  // [n,1]
        t = t.masked_fill(invalid, 0);
      }
      Tensor picked = logp.gather(1, t);
      if (any_ignored) picked.masked_fill_(invalid, 0);
      out.loss.sub_(picked.sum());
      if (!grads) continue;
      Tensor p = logp.exp_();
      p.scatter_add_(1, t, torch::full({n, 1}, -1.0, p.options()));
      if (any_ignored) p.masked_fill_(invalid, 0);
      pc = p.to(hidden.scalar_type());
    }
    if (!grads) continue;
    if (need_h) {
      Tensor gh = out.grad_hidden.narrow(0, s, n);
      torch::mm_out(gh, pc, weight);
    }
    if (need_w) {
      const bool first = s == 0;
      if (out.grad_weight.scalar_type() == pc.scalar_type()) {
        if (first) torch::mm_out(out.grad_weight, pc.t(), h);
        else out.grad_weight.addmm_(pc.t(), h);
      } else {
        if (first) out.grad_weight.copy_(torch::mm(pc.t(), h));
        else out.grad_weight.add_(torch::mm(pc.t(), h));
      }
    }
  }
  return out;
}

struct LinearCrossEntropyFn : public torch::autograd::Function<LinearCrossEntropyFn> {
  static Tensor forward(AutogradContext* ctx, const Tensor& hidden, const Tensor& weight, const Tensor& targets,
                        bool sum, int64_t ignore_index, bool need_h, bool need_w) {
    CrossEntropyPass pass = linear_cross_entropy_pass(hidden, weight, targets, ignore_index, need_h, need_w);
    ctx->saved_data["sum"] = sum;
    ctx->saved_data["weight_dtype"] = static_cast<int64_t>(weight.scalar_type());
    ctx->save_for_backward({pass.grad_hidden, pass.grad_weight, pass.count});
    return sum ? pass.loss : pass.loss / pass.count;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    Tensor g = grads[0];
    if (!ctx->saved_data["sum"].toBool()) g = g / saved[2];
    Tensor dh, dw;
    if (saved[0].defined()) dh = saved[0] * g.to(saved[0].scalar_type());
    if (saved[1].defined())
      dw = (saved[1] * g).to(static_cast<torch::ScalarType>(ctx->saved_data["weight_dtype"].toInt()));
    return {dh, dw, Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

}  // namespace

Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps) {
  if (!use_kernel({&x, &weight}) || x.size(-1) != weight.numel()) return rms_norm_plain(x, weight, eps);
  if (wants_grad({&x, &weight})) return RMSNormFn::apply(x, weight, eps);
  Tensor xc = x.contiguous(), wc = weight.contiguous();
  Tensor y = torch::empty_like(xc);
  auto acc_dtype = x.scalar_type() == torch::kFloat64 ? torch::kFloat64 : torch::kFloat32;
  Tensor rinv = torch::empty({xc.numel() / xc.size(-1)}, xc.options().dtype(acc_dtype));
  rms_norm_forward_kernel(xc, wc, eps, y, rinv);
  return y;
}

std::pair<Tensor, Tensor> rope_qk(const Tensor& q_in, const Tensor& k_in, const Tensor& cos, const Tensor& sin,
                                  double q_scale) {
  const bool shapes = q_in.dim() == 4 && k_in.dim() == 4 && cos.dim() == 3 && sin.dim() == 3 &&
                      q_in.size(-1) % 2 == 0 && q_in.stride(-1) == 1 && k_in.stride(-1) == 1 &&
                      cos.stride(-1) == 1 && sin.stride(-1) == 1 && cos.size(-1) == q_in.size(-1);
  if (!shapes || !use_kernel({&q_in, &k_in, &cos, &sin})) return rope_qk_plain(q_in, k_in, cos, sin, q_scale);
  if (wants_grad({&q_in, &k_in})) {
    auto out = RopeFn::apply(q_in, k_in, cos, sin, q_scale);
    return {out[0], out[1]};
  }
  Tensor q = torch::empty({q_in.size(0), q_in.size(2), q_in.size(1), q_in.size(3)}, q_in.options());
  Tensor k = torch::empty({k_in.size(0), k_in.size(2), k_in.size(1), k_in.size(3)}, k_in.options());
  rope_kernel(q_in, k_in, cos, sin, q_scale, q, k, /*transpose=*/false);
  return {q, k};
}

Tensor attention_decode(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias) {
  if (!use_kernel({&q, &k, &v}) || wants_grad({&q, &k, &v})) return Tensor();
  const auto dtype = q.scalar_type();
  if ((dtype != torch::kFloat32 && dtype != torch::kBFloat16) || k.scalar_type() != dtype || v.scalar_type() != dtype)
    return Tensor();
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4 || !q.is_contiguous() || k.stride(3) != 1 || v.stride(3) != 1 ||
      k.sizes() != v.sizes() || k.size(0) != q.size(0) || k.size(3) != q.size(3) || q.size(1) % k.size(1) != 0)
    return Tensor();
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), KV = k.size(1), S = k.size(2), G = H / KV;
  Tensor b = bias;
  if (b.defined()) {
    if (b.scalar_type() != torch::kFloat32 || !b.device().is_cpu() || b.dim() != 5 || b.size(3) != T ||
        b.size(4) != S || (b.size(0) != 1 && b.size(0) != B) || b.size(1) != 1 || b.size(2) != 1)
      return Tensor();
    if (b.stride(4) != 1) b = b.contiguous();
  }
  const int64_t bb = b.defined() && b.size(0) != 1 ? b.stride(0) : 0, bt = b.defined() ? b.stride(3) : 0;
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  Tensor out = torch::empty({B, T, H * D}, q.options());
  const kernels::AttentionKernels& kern = kernels::attention_kernels();
  // One task per (sequence, kv head): its G·T query rows read each cached key once.
  at::parallel_for(0, B * KV, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t bi = task / KV, g = task % KV;
      const int64_t qo = (bi * H + g * G) * T * D, ko = bi * k.stride(0) + g * k.stride(1);
      const int64_t vo = bi * v.stride(0) + g * v.stride(1), oo = bi * T * H * D + g * G * D;
      const float* bias_rows = bp ? bp + bi * bb : nullptr;
      if (dtype == torch::kFloat32) {
        kern.decode_f32(q.data_ptr<float>() + qo, G * T, T, k.data_ptr<float>() + ko, k.stride(2),
                        v.data_ptr<float>() + vo, v.stride(2), S, D, bias_rows, bt, out.data_ptr<float>() + oo, D,
                        H * D);
      } else {
        auto bits = [](const Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()); };
        kern.decode_bf16(bits(q) + qo, G * T, T, bits(k) + ko, k.stride(2), bits(v) + vo, v.stride(2), S, D,
                         bias_rows, bt, bits(out) + oo, D, H * D);
      }
    }
  });
  return out;
}

Tensor swiglu(const Tensor& gate, const Tensor& up) {
  // Large inputs (prompts, training batches) go to ATen's vectorised silu and mul: this
  // file's loops are plain C++ and their exp() costs more than the two dispatches saved.
  // ATen's silu vectorises only a dense input: on the strided half of a fused gate/up output
  // it runs ~10× slower than a copy plus silu ([8,128,704] fp32, 1 thread: 6.9 ms against
  // 0.3 + 0.7 ms), in the forward and again in its backward.
  if (!use_kernel({&gate, &up}) || gate.sizes() != up.sizes() || gate.numel() > 32768)
    return torch::silu(gate.is_contiguous() ? gate : gate.contiguous()) * up;
  Tensor g = row_stride(gate) < 0 ? gate.contiguous() : gate;
  Tensor u = row_stride(up) < 0 ? up.contiguous() : up;
  if (wants_grad({&g, &u})) return SwiGLUFn::apply(g, u);
  return SwiGLUFn::run(g, u);
}

Tensor linear_cross_entropy(const Tensor& hidden, const Tensor& weight, const Tensor& targets, bool sum,
                            int64_t ignore_index) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && targets.dim() == 1 && hidden.size(0) == targets.size(0) &&
                  hidden.size(1) == weight.size(1),
              "linear_cross_entropy: hidden [N,H], weight [V,H], targets [N] expected, got ", hidden.sizes(), ", ",
              weight.sizes(), ", ", targets.sizes());
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type(), "linear_cross_entropy: hidden and weight dtypes differ");
  Tensor t = targets.to(hidden.device(), torch::kInt64);
  const bool grad = torch::GradMode::is_enabled();
  const bool need_h = grad && hidden.requires_grad(), need_w = grad && weight.requires_grad();
  if (need_h || need_w) return LinearCrossEntropyFn::apply(hidden, weight, t, sum, ignore_index, need_h, need_w);
  CrossEntropyPass pass = linear_cross_entropy_pass(hidden, weight, t, ignore_index, false, false);
  return sum ? pass.loss : pass.loss / pass.count;
}

}  // namespace ellm::decoder_ops
