#include "ellm/util/build_paths.h"

namespace ellm {

const std::string& source_dir() {
  static const std::string dir = ELLM_SOURCE_DIR;
  return dir;
}

const std::string& spm_library_path() {
  static const std::string path = ELLM_SPM_LIBRARY_PATH;
  return path;
}

const std::string& ellm_binary() {
  static const std::string path = ELLM_BINARY_PATH;
  return path;
}

}  // namespace ellm
