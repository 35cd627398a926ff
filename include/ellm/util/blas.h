#pragma once
// Which BLAS the process actually loaded. On Debian, libtorch links
// libblas.so.3, an alternatives symlink that may resolve to the reference BLAS
// (~5 GFLOP/s fp32 here) or to OpenBLAS (~300 GFLOP/s): speed depends on it.
#include <string>

namespace ellm {

struct BlasInfo {
  std::string path;      // resolved path of the loaded BLAS library ("" if none found)
  std::string name;      // "OpenBLAS (openmp)", "reference BLAS", "MKL", ...
  bool reference = false;  // true for Netlib's reference implementation
};

BlasInfo loaded_blas();

// Logs a warning (once) when the loaded BLAS is the reference one.
void warn_if_reference_blas();

}  // namespace ellm
