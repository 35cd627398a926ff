#pragma once
// Scratch directories for tests: one per (name, process), so that tests running in parallel
// under ctest never share one.
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ellm::test_support {

// $TMPDIR/ellm_test_<name>_<pid>, removed if present (not created: for outputs whose writer
// insists on a new directory).
inline std::string fresh_path(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("ellm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  return d.string();
}

// The same path, created empty.
inline std::string fresh_dir(const std::string& name) {
  std::string d = fresh_path(name);
  std::filesystem::create_directories(d);
  return d;
}

}  // namespace ellm::test_support
