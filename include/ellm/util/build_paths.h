#pragma once
// Paths fixed at build time. They live in one translation unit (src/util/build_paths.cpp) so
// that every other file compiles with the same flags in every checkout: ccache then reuses
// objects across clones, and moving a checkout rebuilds one file.
#include <string>

namespace ellm {

// The source tree: shipped configs/, scripts/ and tests/data/ are looked up under it.
const std::string& source_dir();

// Where the build wrote libellm_spm.so (the SentencePiece shim, loaded with dlopen).
const std::string& spm_library_path();

// The ellm executable this build produced (tests run it as a subprocess).
const std::string& ellm_binary();

}  // namespace ellm
