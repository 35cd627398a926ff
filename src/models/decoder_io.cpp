// Decoder checkpoints in Hugging Face's layout: strict load, (sharded) save.
#include <filesystem>
#include <map>

#include "ellm/io/atomic_file.h"
#include "ellm/io/checkpoint.h"
#include "ellm/models/decoder.h"
#include "ellm/util/error.h"

namespace ellm {

Decoder load_decoder(const std::string& dir, torch::Dtype dtype, torch::Device device) {
  DecoderConfig config = DecoderConfig::load(dir);
  if (!has_checkpoint(dir))
    fail("{}: no weights (expected model.safetensors or model.safetensors.index.json)", dir);
  CheckpointReader reader(dir);
  Decoder model(config, torch::TensorOptions().dtype(dtype).device(device));
  std::map<std::string, at::Tensor> params;
  for (auto& [name, p] : model->base_parameters()) params.emplace(name, p);
  load_strict(params, reader, config.model_type + " decoder");
  return model;
}

void save_decoder(Decoder& model, const std::string& dir, uint64_t max_shard_bytes) {
  ensure_dir(dir);
  DecoderConfig config = model->config();
  config.torch_dtype = hf_dtype_name(model->dtype());
  NamedTensors tensors;
  for (auto& [name, p] : model->base_parameters()) tensors.emplace_back(name, p.detach());
  save_checkpoint(dir, tensors, max_shard_bytes);
  write_file_atomic((std::filesystem::path(dir) / "config.json").string(), config.to_json().dump(2) + "\n");
}

}  // namespace ellm
