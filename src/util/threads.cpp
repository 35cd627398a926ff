#include "ellm/util/threads.h"

#include <dlfcn.h>

namespace ellm {
namespace {

// OpenMP's own calls, looked up in the process rather than linked: libtorch may carry its own
// copy of the OpenMP runtime (the official CUDA builds do), and the setting must reach the
// runtime ATen uses. at::set_num_threads is not an option here: it also resizes libtorch's
// thread pools and costs milliseconds per call (a scratch harness on a loaded machine: ~6 ms per switch pair).
struct OpenMP {
  void (*set_num_threads)(int) = nullptr;
  int (*get_max_threads)() = nullptr;
};

const OpenMP& openmp() {
  static const OpenMP api = [] {
    OpenMP a;
    a.set_num_threads = reinterpret_cast<void (*)(int)>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
    a.get_max_threads = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
    if (!a.set_num_threads || !a.get_max_threads) a = OpenMP{};
    return a;
  }();
  return api;
}

}  // namespace

IntraOpThreadsScope::IntraOpThreadsScope(int threads) : saved_(0) {
  const OpenMP& omp = openmp();
  if (!omp.set_num_threads) return;  // no OpenMP runtime: the scope changes nothing
  saved_ = omp.get_max_threads();
  if (threads != saved_) omp.set_num_threads(threads);
}

IntraOpThreadsScope::~IntraOpThreadsScope() {
  const OpenMP& omp = openmp();
  if (omp.set_num_threads && saved_ > 0 && omp.get_max_threads() != saved_) omp.set_num_threads(saved_);
}

}  // namespace ellm
