#include "ellm/util/blas.h"

#include <link.h>
#include <spdlog/spdlog.h>

#include <climits>
#include <cstdlib>
#include <vector>

#include "ellm/util/strings.h"

namespace ellm {

static std::vector<std::string> loaded_libraries() {
  std::vector<std::string> libs;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name && *info->dlpi_name) static_cast<std::vector<std::string>*>(data)->push_back(info->dlpi_name);
        return 0;
      },
      &libs);
  return libs;
}

BlasInfo loaded_blas() {
  BlasInfo info;
  for (const auto& lib : loaded_libraries()) {
    std::string base = lib.substr(lib.rfind('/') + 1);
    bool candidate = starts_with(base, "libblas") || starts_with(base, "libopenblas") ||
                     starts_with(base, "libmkl_rt") || starts_with(base, "libblis");
    if (!candidate) continue;
    char resolved[PATH_MAX];
    std::string real = realpath(lib.c_str(), resolved) ? resolved : lib;
    info.path = real;
    if (real.find("openblas") != std::string::npos) {
      info.name = real.find("openmp") != std::string::npos   ? "OpenBLAS (openmp)"
                  : real.find("pthread") != std::string::npos ? "OpenBLAS (pthread)"
                                                              : "OpenBLAS";
    } else if (real.find("mkl") != std::string::npos) {
      info.name = "MKL";
    } else if (real.find("blis") != std::string::npos) {
      info.name = "BLIS";
    } else if (real.find("atlas") != std::string::npos) {
      info.name = "ATLAS";
    } else {
      info.name = "reference BLAS";
      info.reference = true;
    }
    // An optimised library wins over a reference one also loaded.
    if (!info.reference) break;
  }
  if (info.path.empty()) info.name = "none loaded (libtorch uses its own kernels or MKL statically)";
  return info;
}

void warn_if_reference_blas() {
  static bool warned = false;
  if (warned) return;
  warned = true;
  BlasInfo b = loaded_blas();
  if (b.reference)
    spdlog::warn("BLAS is the reference implementation ({}): fp32 matmul is ~60x slower than OpenBLAS. "
                 "Install libopenblas0-openmp (scripts/setup.sh does).", b.path);
}

}  // namespace ellm
