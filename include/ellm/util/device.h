#pragma once
// Device choice, in one place: every stage takes `--device cpu|cuda|cuda:N|auto`
// and resolves it here. "auto" is CUDA when this build and machine have it.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

namespace ellm {

c10::Device resolve_device(const std::string& spec);

// "fp32" | "bf16" | "fp16" → scalar type; errors name the flag value.
c10::ScalarType parse_dtype(const std::string& name);
std::string dtype_name(c10::ScalarType t);

// True when bf16 compute is fast on this device (CUDA sm80+, or a CPU with AVX512-BF16/AMX).
bool bf16_supported(const c10::Device& device);

// One line describing the devices this build can use ("cpu: 2 threads, AVX512; cuda: none").
std::string describe_devices();

}  // namespace ellm
