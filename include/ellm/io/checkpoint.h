#pragma once
// Model directories in Hugging Face's layout:
//   config.json
//   model.safetensors                      (one file), or
//   model-00001-of-0000N.safetensors ...   + model.safetensors.index.json
//   tokenizer files, and for LoRA adapter_config.json + adapter_model.safetensors
//
// CheckpointReader sees the weights of a directory (single or sharded) as one
// name → tensor table. load_strict() fills named parameters from it the way
// llama.cpp's loader does: every tensor in the files used exactly once, every
// parameter filled, shapes checked, and any mismatch names the tensor.
#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ellm/io/safetensors.h"

namespace ellm {

class CheckpointReader {
 public:
  // dir holds `<stem>.safetensors` or `<stem>.safetensors.index.json` + shards.
  explicit CheckpointReader(const std::string& dir, const std::string& stem = "model");

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  const SafetensorInfo& info(const std::string& name) const;
  at::Tensor view(const std::string& name) const;  // zero-copy
  const std::map<std::string, std::string>& metadata() const;  // of the first shard
  const std::string& dir() const { return dir_; }
  size_t total_bytes() const;

 private:
  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

// True when dir holds weights under this stem.
bool has_checkpoint(const std::string& dir, const std::string& stem = "model");

// Copies every tensor of `reader` into the matching entry of `params` (by name,
// in place, converting floating dtypes to the parameter's). Errors: a tensor in
// the files that no parameter takes, a parameter the files lack, a shape
// mismatch, or a float/integer kind mismatch — each naming the tensor.
// `what` names the model for messages ("qwen2 decoder").
void load_strict(const std::map<std::string, at::Tensor>& params, const CheckpointReader& reader,
                 const std::string& what);

// Writes tensors as `<stem>.safetensors`, or, when their total exceeds
// max_shard_bytes, as `<stem>-0000k-of-0000n.safetensors` shards plus
// `<stem>.safetensors.index.json` ({"metadata": {"total_size"}, "weight_map"}).
// Stale weight files of the other layout are removed.
void save_checkpoint(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes = 5ull << 30,
                     const std::map<std::string, std::string>& metadata = {{"format", "pt"}},
                     const std::string& stem = "model");

}  // namespace ellm
