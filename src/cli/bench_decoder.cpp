// ellm bench forward | generate: decoder throughput on random weights (JSON lines);
// train-decoder lives in bench_train_decoder.cpp.
// Geometries are configs/models/<name>.json; figures compare with ../shared/PEERS.md.
#include <torch/torch.h>

#include <filesystem>

#include "commands.h"
#include "ellm/models/decoder.h"
#include "ellm/models/generate.h"
#include "ellm/models/small_linear.h"
#include "ellm/util/bench.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/build_paths.h"
#include "ellm/util/kernel_threads.h"

namespace ellm::cli {

double measure_fp32_peak_gflops(int size, double seconds);  // bench.cpp

// A geometry by name (configs/models/NAME.json) or path; also used by bench_train_decoder.cpp.
DecoderConfig bench_decoder_config(const std::string& name) {
  std::string path = name;
  if (!std::filesystem::exists(path)) path = ellm::source_dir() + "/configs/models/" + name + ".json";
  return DecoderConfig::load(path);
}

namespace {

// Matmul FLOPs of one forward over T tokens of one sequence (attention over all S=T keys
// as computed, the full-vocabulary head on the kept positions).
double forward_flops(const DecoderConfig& c, int64_t T, int64_t logits_positions) {
  double H = c.hidden_size, I = c.intermediate_size, qd = c.num_attention_heads * c.head_dim,
         kd = c.num_key_value_heads * c.head_dim;
  double per_token_layer = 2 * (H * qd + 2 * H * kd + qd * H + 3 * H * I) + 4.0 * T * qd;
  return T * c.num_hidden_layers * per_token_layer + 2.0 * H * c.vocab_size * logits_positions;
}

void add_forward(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("forward", "decoder forward tokens/s and fraction of the fp32 matmul peak");
  static std::vector<std::string> models{"qwen2-tiny", "qwen2-0.5b"}, dtypes{"fp32", "bf16"};
  static int64_t batch = 1, seq = 256;
  static double seconds = 3.0;
  static std::string device = "auto";
  static bool unfused = false;
  cmd->add_flag("--unfused", unfused, "q/k/v and gate/up as separate matmuls (comparison)");
  cmd->add_option("--model", models, "geometries (configs/models/NAME.json or a file)")->delimiter(',')->capture_default_str();
  cmd->add_option("--dtype", dtypes, "compute dtypes")->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", batch)->capture_default_str();
  cmd->add_option("--seq", seq)->capture_default_str();
  cmd->add_option("--seconds", seconds, "minimum measuring time per case")->capture_default_str();
  cmd->add_option("--device", device)->capture_default_str();
  cmd->callback([] {
    c10::InferenceMode inference;
    auto dev = resolve_device(device);
    double peak = dev.is_cpu() ? measure_fp32_peak_gflops(2048, 2.0) : 0.0;
    if (peak > 0) emit_bench("gemm", {{"n", 2048}, {"dtype", "fp32"}, {"threads", at::get_num_threads()}}, "throughput", peak, "GFLOP/s");
    for (const auto& name : models) {
      DecoderConfig cfg = bench_decoder_config(name);
      for (const auto& dt : dtypes) {
        Decoder m = make_decoder(cfg, parse_dtype(dt), dev, 0);
        m->eval();
        m->set_fused_projections(!unfused);
        auto ids = torch::randint(cfg.vocab_size, {batch, seq}, torch::TensorOptions().dtype(torch::kInt64).device(dev));
        auto t = time_runs([&] { m->forward(ids); }, 1, 3, seconds);
        double tokens = static_cast<double>(batch * seq);
        double gflops = batch * forward_flops(cfg, seq, seq) / t.median_s / 1e9;
        json extra = {{"median_ms", t.median_s * 1e3}, {"runs", t.runs}, {"gflops", gflops}};
        if (peak > 0 && dt == "fp32") extra["fraction_of_fp32_peak"] = gflops / peak;
        emit_bench("decoder_forward",
                   {{"model", name}, {"dtype", dt}, {"batch", batch}, {"seq", seq}, {"fused", !unfused},
                    {"params", m->num_parameters()},
                    {"threads", at::get_num_threads()}, {"kernel_threads", kernel_threads()}, {"device", dev.str()}},
                   "throughput", tokens / t.median_s, "tokens/s", extra);
      }
    }
  });
}

void add_generate_bench(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("generate", "batched generation with the KV cache: new tokens/s");
  static std::vector<std::string> models{"qwen2-tiny", "qwen2-0.5b"}, dtypes{"fp32", "bf16"};
  static std::vector<int64_t> batches{1, 8};
  static int64_t prompt_len = 128, new_tokens = 64;
  static double seconds = 3.0;
  static std::string device = "auto";
  static bool no_cache = false, unfused = false;
  cmd->add_option("--model", models, "geometries")->delimiter(',')->capture_default_str();
  cmd->add_option("--dtype", dtypes)->delimiter(',')->capture_default_str();
  cmd->add_option("--batch", batches)->delimiter(',')->capture_default_str();
  cmd->add_option("--prompt", prompt_len, "prompt tokens")->capture_default_str();
  cmd->add_option("--new", new_tokens, "generated tokens")->capture_default_str();
  cmd->add_option("--seconds", seconds, "minimum measuring time per case")->capture_default_str();
  cmd->add_option("--device", device)->capture_default_str();
  cmd->add_flag("--unfused", unfused, "q/k/v and gate/up as separate matmuls (comparison)");
  cmd->add_flag("--no-cache", no_cache, "recompute the sequence every step (the cache's speed-up, for reference)");
  cmd->callback([] {
    auto dev = resolve_device(device);
    for (const auto& name : models) {
      DecoderConfig cfg = bench_decoder_config(name);
      for (const auto& dt : dtypes) {
        Decoder m = make_decoder(cfg, parse_dtype(dt), dev, 0);
        m->set_fused_projections(!unfused);
        for (int64_t b : batches) {
          auto r = torch::randint(cfg.vocab_size, {b, prompt_len}, torch::kInt64);
          std::vector<std::vector<int64_t>> prompts(b);
          for (int64_t i = 0; i < b; ++i) prompts[i] = std::vector<int64_t>(r[i].data_ptr<int64_t>(), r[i].data_ptr<int64_t>() + prompt_len);
          GenerateOptions opt;
          opt.max_new_tokens = new_tokens;
          opt.use_cache = !no_cache;
          int64_t produced = 0;
          auto t = time_runs([&] {
            auto out = generate(m, prompts, opt);
            produced = 0;
            for (auto& o : out) produced += o.size();
          }, 1, 2, seconds);
          emit_bench("decoder_generate",
                     {{"model", name}, {"dtype", dt}, {"batch", b}, {"prompt", prompt_len}, {"new", new_tokens},
                      {"cache", !no_cache}, {"fused", !unfused}, {"threads", at::get_num_threads()}, {"kernel_threads", kernel_threads()},
                      {"device", dev.str()}, {"small_linear", small_linear_isa()}},
                     "throughput", produced / t.median_s, "new tokens/s", {{"median_ms", t.median_s * 1e3}, {"runs", t.runs}});
        }
      }
    }
  });
}

}  // namespace

void add_bench_decoder(CLI::App& bench) {
  add_forward(bench);
  add_generate_bench(bench);
  add_bench_train_decoder(bench);
}

}  // namespace ellm::cli
