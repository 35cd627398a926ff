// ellm bench train-decoder: decoder training steps (forward, next-token loss over every
// position, backward, data-parallel gradient all-reduce, clipping, AdamW) as PEERS.md's
// transformers figure measures them, on one rank or on many under `ellm launch`.
//
// Contract. With WORLD_SIZE > 1 (ellm launch, Slurm, torchrun) every rank joins the group
// through `Distributed` (the trainer's rendezvous), starts from rank 0's weights, runs the
// same per-rank batch (`--batch` × `--seq`, its own random tokens), and all-reduces the
// gradients with the trainer's own function (Distributed::allreduce_gradients). With one
// rank it is the same code, and the all-reduce is a no-op. Every rank runs the same number
// of steps between two barriers; rank 0 prints one JSON line per case:
//   value = global tokens/s (world_size × batch × seq × steps / interval),
//   per_rank_tokens_per_s, world_size (in config), steps, interval_s, median_step_ms.
// With `--scaling` and several ranks, rank 0 first measures alone (a single-process group,
// the world-1 code path) while the other ranks wait in a barrier, and the line adds
// single_rank_tokens_per_s and scaling_efficiency = global / (world_size × single rank):
// both figures come from the same processes, thread count and minute of machine load.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <vector>

#include "commands.h"
#include "ellm/models/decoder.h"
#include "ellm/train/adamw.h"
#include "ellm/train/distributed.h"
#include "ellm/util/bench.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/kernel_threads.h"

namespace ellm::cli {

DecoderConfig bench_decoder_config(const std::string& name);  // bench_decoder.cpp

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

struct StepTiming {
  int steps = 0;
  double interval_s = 0, median_step_s = 0;
};

// Runs `step` on every rank of `group` the same number of times between two barriers, so
// that all ranks measure the same interval. The count must agree across ranks (each step
// holds an all-reduce that every rank has to join): rank 0 derives it from one timed
// calibration step and shares it.
StepTiming time_steps(Distributed& group, const std::function<void()>& step, double min_seconds, int min_steps = 3,
                      int max_steps = 1000) {
  step();  // warm-up: allocator, first touch of activations and of the AdamW moments
  group.barrier();
  auto c0 = Clock::now();
  step();
  double calibration_s = since(c0);
  double planned = group.is_main() ? std::clamp(std::ceil(min_seconds / std::max(calibration_s, 1e-9)),
                                                static_cast<double>(min_steps), static_cast<double>(max_steps))
                                   : 0.0;
  StepTiming t;
  t.steps = static_cast<int>(std::lround(group.allreduce_sum(planned)));
  std::vector<double> times;
  group.barrier();
  auto start = Clock::now();
  for (int i = 0; i < t.steps; ++i) {
    auto s0 = Clock::now();
    step();
    times.push_back(since(s0));
  }
  group.barrier();
  t.interval_s = since(start);
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  t.median_step_s = n % 2 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
  return t;
}

void add_train_bench(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "train-decoder", "decoder training steps (forward+backward+all-reduce+AdamW): tokens/s; ranks under `ellm launch`");
  static std::vector<std::string> models{"qwen2-tiny"}, dtypes{"fp32", "bf16"};
  static int64_t batch = 4, seq = 256;
  static double seconds = 5.0, timeout_s = 300;
  static bool checkpointing = false, scaling = false, plain_loss = false, unfused = false;
  static std::string device = "auto";
  cmd->add_option("--model", models, "geometries (configs/models/NAME.json or a file)")->delimiter(',')->capture_default_str();
  cmd->add_option("--dtype", dtypes)->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", batch, "sequences per step on each rank")->capture_default_str();
  cmd->add_option("--seq", seq)->capture_default_str();
  cmd->add_option("--seconds", seconds, "minimum measuring time per case")->capture_default_str();
  cmd->add_flag("--gradient-checkpointing", checkpointing, "recompute each layer in backward");
  cmd->add_flag("--plain-loss", plain_loss, "full logits + cross_entropy instead of the chunked lm_loss (comparison)");
  cmd->add_flag("--unfused", unfused, "q/k/v and gate/up as separate matmuls (comparison)");
  cmd->add_flag("--scaling", scaling,
                "with several ranks: first time rank 0 alone (the others wait) and report scaling_efficiency");
  cmd->add_option("--dist-timeout", timeout_s,
                  "seconds a collective may wait (with --scaling, the other ranks wait out rank 0's solo run)")
      ->capture_default_str();
  cmd->add_option("--device", device)->capture_default_str();
  cmd->callback([] {
    ELLM_CHECK(batch > 0 && seq > 1, "bench train-decoder: --batch must be positive and --seq at least 2");
    auto dev = resolve_device(device);
    Distributed group(read_dist_env(), dev, std::chrono::seconds(static_cast<int64_t>(timeout_s)));
    const int world = group.world_size();
    for (const auto& name : models) {
      DecoderConfig cfg = bench_decoder_config(name);
      for (const auto& dt : dtypes) {
        Decoder m = make_decoder(cfg, parse_dtype(dt), dev, 0);
        m->train();
        m->set_gradient_checkpointing(checkpointing);
        m->set_fused_projections(!unfused);
        auto params = m->base_parameters();
        {
          std::vector<at::Tensor> t;  // every rank starts from rank 0's weights, as in the Trainer
          for (auto& p : params) t.push_back(p.second.detach());
          group.broadcast(t);
        }
        AdamW opt(params, AdamWOptions{});
        // Each rank its own tokens (data parallelism: different data, same weights).
        torch::manual_seed(1000 + group.rank());
        auto ids = torch::randint(cfg.vocab_size, {batch, seq}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
        // One training step within `g`; the loss is scaled by 1/world so that the summed
        // gradient is the mean over the global batch (what the Trainer's normalisation gives).
        auto step_in = [&](Distributed& g) {
          return [&, gp = &g] {
            Distributed& g = *gp;
            opt.zero_grad();
            torch::Tensor loss;
            if (plain_loss) {
              torch::Tensor logits = m->forward(ids.narrow(1, 0, seq - 1));
              loss = torch::nn::functional::cross_entropy(logits.reshape({-1, cfg.vocab_size}),
                                                          ids.narrow(1, 1, seq - 1).reshape({-1}));
            } else {
              // The same mean next-token loss without materialising the [B·T, V] logits.
              loss = m->lm_loss(m->hidden_states(ids.narrow(1, 0, seq - 1)), ids.narrow(1, 1, seq - 1));
            }
            (loss / g.world_size()).backward();
            g.allreduce_gradients(params);
            clip_grad_norm(params, 1.0);
            opt.step(1e-4);
          };
        };
        const double tokens_per_rank_step = static_cast<double>(batch * seq);

        double single_rank = 0;
        if (scaling && world > 1) {
          if (group.is_main()) {
            Distributed alone;  // a single-process group: the world-1 path, no collectives
            StepTiming s = time_steps(alone, step_in(alone), seconds);
            single_rank = tokens_per_rank_step * s.steps / s.interval_s;
            spdlog::info("{} {}: rank 0 alone {:.1f} tokens/s ({} steps in {:.2f} s)", name, dt, single_rank, s.steps,
                         s.interval_s);
          }
          group.barrier();  // the other ranks wait here, idle, while rank 0 measures alone
        }

        StepTiming t = time_steps(group, step_in(group), seconds);
        double per_rank = tokens_per_rank_step * t.steps / t.interval_s, global = per_rank * world;
        if (!group.is_main()) continue;
        json extra = {{"per_rank_tokens_per_s", per_rank}, {"global_tokens_per_s", global}, {"steps", t.steps},
                      {"interval_s", t.interval_s}, {"median_step_ms", t.median_step_s * 1e3}};
        if (single_rank > 0) {
          extra["single_rank_tokens_per_s"] = single_rank;
          extra["scaling_efficiency"] = global / (world * single_rank);
        }
        emit_bench("decoder_train",
                   {{"model", name}, {"dtype", dt}, {"batch", batch}, {"seq", seq}, {"world_size", world},
                    {"gradient_checkpointing", checkpointing}, {"loss", plain_loss ? "plain" : "chunked"},
                    {"fused", !unfused}, {"params", m->num_parameters()},
                    {"threads", at::get_num_threads()}, {"kernel_threads", kernel_threads()}, {"device", dev.str()}},
                   "throughput", global, "tokens/s", extra);
      }
    }
  });
}

}  // namespace

void add_bench_train_decoder(CLI::App& bench) { add_train_bench(bench); }

}  // namespace ellm::cli
