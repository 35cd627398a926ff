#include "ellm/util/threads.h"

#include <ATen/Parallel.h>

namespace ellm {

IntraOpThreadsScope::IntraOpThreadsScope(int threads) : saved_(at::get_num_threads()) {
  if (threads != saved_) at::set_num_threads(threads);
}

IntraOpThreadsScope::~IntraOpThreadsScope() {
  if (at::get_num_threads() != saved_) at::set_num_threads(saved_);
}

}  // namespace ellm
