#pragma once
// Intra-op threads of the calling thread, for the span of a scope.
//
// Why: a batch-1 student forward is ~100 small operations (64 tokens × 256 features); waking
// a second thread for each costs more than the second thread saves (docs/students.md has
// the figures), so small inference runs serially on the thread that asked for it. The count
// is OpenMP's nthreads-var, a per-thread setting that ATen's parallel_for, oneDNN and
// OpenBLAS (OpenMP build) all read, so other threads (a server's other requests) keep
// theirs. Without an OpenMP runtime in the process the scope changes nothing.
namespace ellm {

class IntraOpThreadsScope {
 public:
  explicit IntraOpThreadsScope(int threads);
  ~IntraOpThreadsScope();
  IntraOpThreadsScope(const IntraOpThreadsScope&) = delete;
  IntraOpThreadsScope& operator=(const IntraOpThreadsScope&) = delete;

 private:
  int saved_;
};

}  // namespace ellm
