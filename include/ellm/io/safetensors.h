#pragma once
// safetensors, as Hugging Face defines it:
//   [u64 little-endian N][N bytes of JSON header][data]
// header: {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//          "data_offsets": [begin, end]}, ...}, offsets relative to the data start.
//
// The reader validates the whole header before any data is touched: header
// length against the file size, the JSON, known dtypes, shape × dtype size ==
// byte range, ranges inside the data region, no overlaps and no gaps. Any
// violation is an ellm::Error naming the file (and tensor), never a crash or an
// out-of-bounds read. Data is mmapped: view() is zero-copy, load() copies.
//
// The writer pads the header with spaces to a multiple of 8 bytes (as the
// reference implementation does) and writes atomically.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ellm {

struct SafetensorInfo {
  std::string name;
  std::string dtype;            // "F32", "BF16", ...
  c10::ScalarType scalar_type;  // the matching torch type
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data region
  int64_t numel() const;
};

// Bytes per element of a safetensors dtype name; throws for unknown names.
size_t safetensors_dtype_size(const std::string& dtype);
c10::ScalarType safetensors_to_torch(const std::string& dtype);
std::string torch_to_safetensors(c10::ScalarType type);

class SafetensorsFile {
 public:
  static constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // as the reference implementation

  explicit SafetensorsFile(const std::string& path);  // opens, maps, validates
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // In file (data offset) order.
  const std::vector<SafetensorInfo>& tensors() const { return tensors_; }
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  const SafetensorInfo& info(const std::string& name) const;
  uint64_t data_bytes() const { return data_size_; }

  // Zero-copy CPU tensor over the mapping; keeps the mapping alive while it lives.
  at::Tensor view(const std::string& name) const;
  // A fresh, owned CPU tensor.
  at::Tensor load(const std::string& name) const;

 private:
  struct Mapping;
  std::string path_;
  std::shared_ptr<Mapping> mapping_;
  const uint8_t* data_ = nullptr;  // start of the data region
  uint64_t data_size_ = 0;
  std::vector<SafetensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Writes tensors (any device/layout; copied to contiguous CPU) in the given order.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace ellm
