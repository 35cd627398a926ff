// Pieces every subcommand shares: --version text, config options.
#include <fmt/format.h>

#include <filesystem>

#include "commands.h"
#include "ellm/io/atomic_file.h"
#include "ellm/util/blas.h"
#include "ellm/util/compat.h"
#include "ellm/util/device.h"

namespace ellm::cli {

std::string version_text() {
  BlasInfo blas = loaded_blas();
  std::string text = fmt::format("ellm {}\nlibtorch {} ({})\nBLAS: {}{}\ndevices: {}", ELLM_VERSION,
                                 compat::torch_version(),
#ifdef ELLM_WITH_CUDA
                                 "CUDA build",
#else
                                 "CPU build",
#endif
                                 blas.name, blas.path.empty() ? "" : " [" + blas.path + "]", describe_devices());
  if (blas.reference)
    text += "\nwarning: this is the reference BLAS, ~60x slower than OpenBLAS for fp32 matmul; "
            "install libopenblas0-openmp (scripts/setup.sh does)";
  return text;
}

void add_config_options(CLI::App* cmd, ConfigOptions& options) {
  cmd->add_option("--config", options.file, "stage config (JSON); its keys override the defaults")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options.overrides, "override one key: --set a.b.c=value (repeatable)")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

void save_resolved_config(const std::string& out_dir, const json& config) {
  ensure_dir(out_dir);
  write_file_atomic((std::filesystem::path(out_dir) / "resolved-config.json").string(), config.dump(2) + "\n");
}

}  // namespace ellm::cli
