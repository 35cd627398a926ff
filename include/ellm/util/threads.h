#pragma once
// Intra-op threads of the calling thread, for the span of a scope.
//
// Why: a batch-1 student forward is ~100 small operations (64 tokens × 256 features); waking
// a second thread for each costs more than the second thread saves (docs/students.md has
// the figures), so small inference runs serially on the thread that asked for it. With
// libtorch's OpenMP backend the thread count is a per-thread setting (OpenMP's nthreads-var),
// so other threads (a server's other requests) keep theirs.
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
