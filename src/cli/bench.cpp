// ellm bench <what>: speed measurements as JSON lines on stdout
// ({"name", "config", "metric", "value", "unit", ...}, util/bench.h).
#include <torch/torch.h>

#include "commands.h"
#include "ellm/util/bench.h"
#include "ellm/util/blas.h"
#include "ellm/util/device.h"
#include "ellm/util/strings.h"

namespace ellm::cli {
namespace {

// Matmul peak of this machine: the yardstick other benchmarks report a fraction of.
void add_bench_gemm(CLI::App& bench) {
  auto* cmd = bench.add_subcommand("gemm", "fp32 and bf16 matmul throughput (GFLOP/s): the machine's peak");
  static int size = 2048;
  static std::vector<std::string> dtypes{"fp32", "bf16"};
  static double seconds = 2.0;
  static std::string device = "auto";
  cmd->add_option("--size", size, "n for an n×n×n matmul")->capture_default_str();
  cmd->add_option("--dtype", dtypes, "dtypes to measure")->capture_default_str()->delimiter(',');
  cmd->add_option("--seconds", seconds, "minimum measuring time per dtype")->capture_default_str();
  cmd->add_option("--device", device, "cpu|cuda|auto")->capture_default_str();
  cmd->callback([] {
    warn_if_reference_blas();
    torch::NoGradGuard no_grad;
    auto dev = resolve_device(device);
    for (const auto& name : dtypes) {
      auto dt = parse_dtype(name);
      auto opts = torch::TensorOptions().dtype(dt).device(dev);
      auto a = torch::randn({size, size}, opts), b = torch::randn({size, size}, opts);
      auto c = torch::empty({size, size}, opts);
      auto t = time_runs([&] {
        torch::mm_out(c, a, b);
        if (dev.is_cuda()) torch::cuda::synchronize();
      }, 2, 5, seconds);
      double flops = 2.0 * size * size * static_cast<double>(size);
      emit_bench("gemm", {{"n", size}, {"dtype", name}, {"device", dev.str()}, {"threads", at::get_num_threads()},
                          {"blas", loaded_blas().name}},
                 "throughput", flops / t.median_s / 1e9, "GFLOP/s", {{"runs", t.runs}, {"median_ms", t.median_s * 1e3}});
    }
  });
}

}  // namespace

// Measures fp32 matmul peak (GFLOP/s) quickly; other benchmarks report fractions of it.
double measure_fp32_peak_gflops(int size, double seconds) {
  torch::NoGradGuard no_grad;
  auto a = torch::randn({size, size}), b = torch::randn({size, size}), c = torch::empty({size, size});
  auto t = time_runs([&] { torch::mm_out(c, a, b); }, 2, 5, seconds);
  return 2.0 * size * size * static_cast<double>(size) / t.median_s / 1e9;
}

void add_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks; JSON lines on stdout");
  bench->require_subcommand(1);
  add_bench_gemm(*bench);
  add_bench_student(*bench);
  add_bench_tokenize(*bench);
  add_bench_decoder(*bench);
  add_bench_teacher(*bench);
}

}  // namespace ellm::cli
