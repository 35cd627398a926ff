#pragma once
// Data-parallel communication over PyTorch's c10d: ProcessGroupGloo on CPU,
// ProcessGroupNCCL when built against a CUDA libtorch and training on CUDA.
// Rendezvous is a TCPStore at MASTER_ADDR:MASTER_PORT, rank and world size
// from the standard variables, so one binary runs under `ellm launch`,
// torchrun-style launchers and Slurm:
//   RANK / WORLD_SIZE / LOCAL_RANK, or SLURM_PROCID / SLURM_NTASKS / SLURM_LOCALID
// With no such variables (or WORLD_SIZE=1) the group is a single process and
// every collective is a no-op.
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ellm {

struct DistEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  bool from_slurm = false;
};

// Reads the environment; errors name the variable.
DistEnv read_dist_env();

// A TCP port on 127.0.0.1 that was free a moment ago (for local rendezvous).
int find_free_port();

class ProcessGroupHandle;

class Distributed {
 public:
  // A single-process group.
  Distributed();
  // Joins the group described by env; `device` selects Gloo (CPU) or NCCL (CUDA).
  // A collective that waits longer than `timeout` fails with an error naming
  // the operation (so a dead peer cannot hang the job forever).
  Distributed(const DistEnv& env, c10::Device device, std::chrono::seconds timeout);
  ~Distributed();
  Distributed(Distributed&&) noexcept;
  Distributed& operator=(Distributed&&) noexcept;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  bool is_main() const { return env_.rank == 0; }

  // Sums each tensor across ranks in place. Tensors are coalesced into
  // flat buckets of at most bucket_bytes and reduced asynchronously.
  void allreduce_sum(const std::vector<at::Tensor>& tensors, size_t bucket_bytes = 25u << 20);
  double allreduce_sum(double value);
  // The data-parallel step after backward: sums every parameter's gradient
  // across ranks (bucketed, as above). A parameter that received no gradient
  // gets zeros first, so that every rank reduces the same list of tensors.
  // The caller scales the loss so that the sum is the gradient it wants.
  // Shared by the Trainer and `ellm bench train-decoder`.
  void allreduce_gradients(const std::vector<std::pair<std::string, at::Tensor>>& params);
  // Copies rank `root`'s tensors into every rank's (in place).
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0);
  void barrier();

 private:
  at::Tensor wire(const at::Tensor& t) const;
  DistEnv env_;
  c10::Device device_{c10::kCPU};
  std::unique_ptr<ProcessGroupHandle> group_;
};

}  // namespace ellm
