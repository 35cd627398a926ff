#pragma once
// The `ellm` subcommands. Each lives in its own file under src/cli/ and adds
// itself to the app; main.cpp only calls these in order and dispatches.
#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "ellm/util/config.h"

namespace ellm::cli {

void add_inspect(CLI::App& app);
void add_prepare(CLI::App& app);
void add_bench(CLI::App& app);
void add_launch(CLI::App& app);
void add_synth(CLI::App& app);
void add_eval(CLI::App& app);
// `ellm bench student` (bench_student.cpp), registered by add_bench.
void add_bench_student(CLI::App& bench);
void add_annotate(CLI::App& app);
void add_distill(CLI::App& app);
// `ellm bench student` (bench_student.cpp), registered by add_bench.
void add_tokenizer(CLI::App& app);
// `ellm bench tokenize` (src/cli/bench_tokenize.cpp), added by add_bench.
void add_bench_tokenize(CLI::App& bench);
void add_plan(CLI::App& app);
void add_model(CLI::App& app);
void add_generate(CLI::App& app);
void add_finetune(CLI::App& app);
// `ellm bench forward|generate` (bench_decoder.cpp), added by add_bench; it also adds
// `ellm bench train-decoder` (bench_train_decoder.cpp).
void add_bench_decoder(CLI::App& bench);
void add_bench_train_decoder(CLI::App& bench);
void add_teacher(CLI::App& app);
void add_serve(CLI::App& app);
// `ellm bench teacher` (bench_teacher.cpp), registered by add_bench.
void add_bench_teacher(CLI::App& bench);

// `ellm --version`: version, libtorch, the BLAS actually loaded, devices.
std::string version_text();

// `--config FILE` and repeatable `--set a.b=value`, shared by every stage.
struct ConfigOptions {
  std::string file;
  std::vector<std::string> overrides;
  // Resolves the stage's defaults with the file and the overrides (util/config.h).
  json resolve(const json& defaults) const { return resolve_config(defaults, file, overrides); }
};
void add_config_options(CLI::App* cmd, ConfigOptions& options);

// Writes the resolved config of a run into its output directory (resolved-config.json).
void save_resolved_config(const std::string& out_dir, const json& config);

}  // namespace ellm::cli
