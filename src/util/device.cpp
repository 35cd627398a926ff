#include "ellm/util/device.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace ellm {

c10::Device resolve_device(const std::string& spec) {
  std::string s = to_lower_ascii(spec);
  if (s == "auto") return torch::cuda::is_available() ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (s == "cpu") return c10::Device(c10::kCPU);
  if (starts_with(s, "cuda")) {
    if (!torch::cuda::is_available())
      fail("--device {}: this build or machine has no CUDA (libtorch {}, {} GPUs visible); use --device cpu",
           spec, TORCH_VERSION, torch::cuda::device_count());
    int index = 0;
    if (s.size() > 4) {
      if (s[4] != ':') fail("--device '{}': expected cuda or cuda:N", spec);
      index = std::stoi(s.substr(5));
    }
    if (index >= static_cast<int>(torch::cuda::device_count()))
      fail("--device {}: only {} CUDA devices", spec, torch::cuda::device_count());
    return c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  fail("--device '{}': expected cpu, cuda, cuda:N or auto", spec);
}

c10::ScalarType parse_dtype(const std::string& name) {
  std::string s = to_lower_ascii(name);
  if (s == "fp32" || s == "float32" || s == "float") return c10::kFloat;
  if (s == "bf16" || s == "bfloat16") return c10::kBFloat16;
  if (s == "fp16" || s == "float16" || s == "half") return c10::kHalf;
  fail("unknown dtype '{}' (use fp32, bf16 or fp16)", name);
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return "fp32";
    case c10::kBFloat16: return "bf16";
    case c10::kHalf: return "fp16";
    case c10::kDouble: return "fp64";
    default: return c10::toString(t);
  }
}

namespace {
struct CpuInfo {
  std::string model = "unknown";
  std::string flags;
  bool has(const std::string& flag) const { return (" " + flags + " ").find(" " + flag + " ") != std::string::npos; }
};

const CpuInfo& cpu_info() {
  static const CpuInfo info = [] {
    CpuInfo ci;
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string key = trim(line.substr(0, colon)), value = trim(line.substr(colon + 1));
      if (key == "model name" && ci.model == "unknown") ci.model = value;
      if (key == "flags" && ci.flags.empty()) ci.flags = value;
    }
    return ci;
  }();
  return info;
}
}  // namespace

bool bf16_supported(const c10::Device& device) {
  if (device.is_cuda()) return true;
  return cpu_info().has("avx512_bf16") || cpu_info().has("amx_bf16");
}

std::string describe_devices() {
  const auto& ci = cpu_info();
  std::string isa = ci.has("amx_bf16") ? "AMX-BF16" : ci.has("avx512f") ? "AVX512" : ci.has("avx2") ? "AVX2" : "baseline";
  std::string cpu = fmt::format("cpu: {} threads, {} ({})", at::get_num_threads(), isa, ci.model);
  std::string cuda = torch::cuda::is_available() ? fmt::format("cuda: {} devices", torch::cuda::device_count())
                                                 : "cuda: none";
  return cpu + "; " + cuda;
}

}  // namespace ellm
