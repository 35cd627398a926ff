#include "ellm/train/distributed.h"

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>
#ifdef ELLM_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "ellm/util/error.h"

namespace ellm {

namespace {
int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  if (!end || *end != 0 || x < 0) fail("environment variable {}='{}' is not a non-negative integer", name, v);
  return static_cast<int>(x);
}
}  // namespace

DistEnv read_dist_env() {
  DistEnv env;
  if (std::getenv("WORLD_SIZE")) {
    env.world_size = env_int("WORLD_SIZE", 1);
    env.rank = env_int("RANK", 0);
    env.local_rank = env_int("LOCAL_RANK", env.rank);
  } else if (std::getenv("SLURM_NTASKS")) {
    env.from_slurm = true;
    env.world_size = env_int("SLURM_NTASKS", 1);
    env.rank = env_int("SLURM_PROCID", 0);
    env.local_rank = env_int("SLURM_LOCALID", 0);
  }
  if (env.world_size < 1) fail("WORLD_SIZE must be at least 1");
  if (env.rank >= env.world_size) fail("RANK {} is not below WORLD_SIZE {}", env.rank, env.world_size);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) env.master_addr = a;
  env.master_port = env_int("MASTER_PORT", 29500);
  if (env.world_size > 1 && env.master_port > 65535) fail("MASTER_PORT {} is out of range", env.master_port);
  return env;
}

int find_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("cannot create a socket: {}", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    fail("cannot find a free port: {}", std::strerror(errno));
  }
  int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

// Hides the concrete c10d class (Gloo or NCCL), whose API differs slightly across libtorch versions.
class ProcessGroupHandle {
 public:
  virtual ~ProcessGroupHandle() = default;
  virtual c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& t) = 0;
  virtual c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& t, int root) = 0;
  virtual c10::intrusive_ptr<c10d::Work> barrier() = 0;
  std::chrono::milliseconds timeout{0};
};

namespace {
template <typename PG>
class Handle : public ProcessGroupHandle {
 public:
  explicit Handle(c10::intrusive_ptr<PG> pg) : pg_(std::move(pg)) {}
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& t) override {
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    return pg_->allreduce(t, o);
  }
  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& t, int root) override {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return pg_->broadcast(t, o);
  }
  c10::intrusive_ptr<c10d::Work> barrier() override { return pg_->barrier(); }

 private:
  c10::intrusive_ptr<PG> pg_;
};

void wait(const c10::intrusive_ptr<c10d::Work>& work, const char* op, int rank) {
  try {
    work->wait();
  } catch (const std::exception& e) {
    fail("rank {}: collective '{}' failed (a peer rank died or timed out?): {}", rank, op, e.what());
  }
}
}  // namespace

// The tensor a collective moves: Gloo (libtorch 1.13) has no bfloat16/half reductions
// ("Invalid scalar type"), so those travel as float32 and are copied back (the sum is then
// also exact in fp32 before rounding). NCCL takes them as they are.
at::Tensor Distributed::wire(const at::Tensor& t) const {
  bool narrow_float = t.scalar_type() == at::kBFloat16 || t.scalar_type() == at::kHalf;
  return narrow_float && !device_.is_cuda() ? t.to(at::kFloat) : t;
}

Distributed::Distributed() = default;
Distributed::~Distributed() = default;
Distributed::Distributed(Distributed&&) noexcept = default;
Distributed& Distributed::operator=(Distributed&&) noexcept = default;

Distributed::Distributed(const DistEnv& env, c10::Device device, std::chrono::seconds timeout)
    : env_(env), device_(device) {
  if (env.world_size == 1) return;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(env.master_port);
  so.isServer = env.rank == 0;
  so.numWorkers = env.world_size;
  so.waitWorkers = true;
  so.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store;
  try {
    store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    fail("rank {}: rendezvous at {}:{} failed: {}", env.rank, env.master_addr, env.master_port, e.what());
  }
  if (device.is_cuda()) {
#ifdef ELLM_WITH_CUDA
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    group_ = std::make_unique<Handle<c10d::ProcessGroupNCCL>>(
        c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts));
#else
    fail("CUDA training requested but this ellm was built without CUDA (NCCL)");
#endif
  } else {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    // Bind to loopback for single-machine jobs; otherwise the interface named by
    // GLOO_SOCKET_IFNAME, or the one this host's name resolves to.
    bool loopback = env.master_addr == "127.0.0.1" || env.master_addr == "localhost";
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    opts->devices.push_back(loopback ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                            : (ifname && *ifname) ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                                                  : c10d::ProcessGroupGloo::createDefaultDevice());
    group_ = std::make_unique<Handle<c10d::ProcessGroupGloo>>(
        c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts));
  }
  group_->timeout = timeout;
  spdlog::info("rank {}/{} joined the {} group at {}:{}", env.rank, env.world_size, device.is_cuda() ? "NCCL" : "Gloo",
               env.master_addr, env.master_port);
}

void Distributed::allreduce_sum(const std::vector<at::Tensor>& tensors, size_t bucket_bytes) {
  if (env_.world_size == 1 || tensors.empty()) return;
  torch::NoGradGuard no_grad;
  // Coalesce into buckets of one dtype so that each collective moves a large flat buffer.
  struct Bucket {
    std::vector<at::Tensor> members;
    std::vector<at::Tensor> flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<Bucket> buckets;
  size_t bytes = 0;
  for (const auto& t : tensors) {
    size_t b = static_cast<size_t>(t.numel()) * t.element_size();
    if (buckets.empty() || bytes + b > bucket_bytes ||
        buckets.back().members.front().scalar_type() != t.scalar_type()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(t);
    bytes += b;
  }
  for (auto& bucket : buckets) {
    std::vector<at::Tensor> flats;
    for (const auto& m : bucket.members) flats.push_back(m.reshape({-1}));
    bucket.flat = {wire(torch::cat(flats))};
    bucket.work = group_->allreduce(bucket.flat);
  }
  for (auto& bucket : buckets) {
    wait(bucket.work, "allreduce", env_.rank);
    int64_t offset = 0;
    for (auto& m : bucket.members) {
      int64_t n = m.numel();
      const_cast<at::Tensor&>(m).copy_(bucket.flat[0].narrow(0, offset, n).view(m.sizes()));
      offset += n;
    }
  }
}

double Distributed::allreduce_sum(double value) {
  if (env_.world_size == 1) return value;
  auto t = torch::full({1}, value, torch::TensorOptions().dtype(torch::kDouble).device(device_));
  allreduce_sum(std::vector<at::Tensor>{t});
  return t.item<double>();
}

void Distributed::allreduce_gradients(const std::vector<std::pair<std::string, at::Tensor>>& params) {
  std::vector<at::Tensor> grads;
  grads.reserve(params.size());
  for (const auto& [name, p] : params) {
    // Also with one rank: callers (clipping, the optimizer) then see a gradient for every parameter.
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  allreduce_sum(grads);
}

void Distributed::broadcast(const std::vector<at::Tensor>& tensors, int root) {
  if (env_.world_size == 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& t : tensors) {
    at::Tensor w = wire(t);
    std::vector<at::Tensor> v{w.is_contiguous() ? w : w.contiguous()};
    wait(group_->broadcast(v, root), "broadcast", env_.rank);
    if (!v[0].is_same(t)) const_cast<at::Tensor&>(t).copy_(v[0]);
  }
}

void Distributed::barrier() {
  if (env_.world_size == 1) return;
  wait(group_->barrier(), "barrier", env_.rank);
}

}  // namespace ellm
