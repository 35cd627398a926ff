#include "ellm/io/checkpoint.h"

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "ellm/io/atomic_file.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

bool has_checkpoint(const std::string& dir, const std::string& stem) {
  return fs::exists(fs::path(dir) / (stem + ".safetensors")) ||
         fs::exists(fs::path(dir) / (stem + ".safetensors.index.json"));
}

CheckpointReader::CheckpointReader(const std::string& dir, const std::string& stem) : dir_(dir) {
  fs::path single = fs::path(dir) / (stem + ".safetensors");
  fs::path index = fs::path(dir) / (stem + ".safetensors.index.json");
  std::vector<std::string> shard_names;
  std::map<std::string, std::string> weight_map;
  if (fs::exists(index)) {
    json idx = read_json_file(index.string());
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail("{}: missing the 'weight_map' object", index.string());
    std::set<std::string> seen;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string()) fail("{}: weight_map['{}'] must be a file name", index.string(), it.key());
      std::string file = it.value().get<std::string>();
      if (file.find('/') != std::string::npos) fail("{}: shard name '{}' must be a plain file name", index.string(), file);
      weight_map[it.key()] = file;
      if (seen.insert(file).second) shard_names.push_back(file);
    }
  } else if (fs::exists(single)) {
    shard_names.push_back(single.filename().string());
  } else {
    fail("{}: no weights ({}.safetensors or {}.safetensors.index.json)", dir, stem, stem);
  }
  std::sort(shard_names.begin(), shard_names.end());
  for (const auto& name : shard_names) {
    files_.push_back(std::make_unique<SafetensorsFile>((fs::path(dir) / name).string()));
    size_t k = files_.size() - 1;
    for (const auto& t : files_.back()->tensors()) {
      if (where_.count(t.name)) fail("{}: tensor '{}' appears in two shards", dir, t.name);
      if (!weight_map.empty()) {
        auto it = weight_map.find(t.name);
        if (it == weight_map.end()) fail("{}: tensor '{}' in shard {} is not listed in the index", dir, t.name, name);
        if (it->second != name)
          fail("{}: tensor '{}' is in shard {} but the index puts it in {}", dir, t.name, name, it->second);
      }
      where_[t.name] = k;
    }
  }
  for (const auto& [name, file] : weight_map)
    if (!where_.count(name)) fail("{}: the index lists tensor '{}' in {} but that shard lacks it", dir, name, file);
}

std::vector<std::string> CheckpointReader::names() const {
  std::vector<std::string> out;
  for (const auto& [n, _] : where_) out.push_back(n);
  return out;
}

const SafetensorInfo& CheckpointReader::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: no tensor named '{}'", dir_, name);
  return files_[it->second]->info(name);
}

at::Tensor CheckpointReader::view(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail("{}: no tensor named '{}'", dir_, name);
  return files_[it->second]->view(name);
}

const std::map<std::string, std::string>& CheckpointReader::metadata() const { return files_.front()->metadata(); }

size_t CheckpointReader::total_bytes() const {
  size_t total = 0;
  for (const auto& f : files_) total += f->data_bytes();
  return total;
}

void load_strict(const std::map<std::string, at::Tensor>& params, const CheckpointReader& reader,
                 const std::string& what) {
  std::vector<std::string> unused, missing;
  for (const auto& name : reader.names())
    if (!params.count(name)) unused.push_back(name);
  for (const auto& [name, _] : params)
    if (!reader.contains(name)) missing.push_back(name);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 5; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 5) s += fmt::format(", … ({} in all)", v.size());
    return s;
  };
  if (!unused.empty()) fail("{}: {} has tensors that the {} does not use: {}", reader.dir(), "checkpoint", what, list(unused));
  if (!missing.empty()) fail("{}: the {} needs tensors the checkpoint lacks: {}", reader.dir(), what, list(missing));
  torch::NoGradGuard no_grad;
  for (const auto& [name, param] : params) {
    const SafetensorInfo& info = reader.info(name);
    if (param.sizes().vec() != info.shape)
      fail("{}: tensor '{}' has shape {} in the checkpoint but the {} expects {}", reader.dir(), name,
           json(info.shape).dump(), what, json(param.sizes().vec()).dump());
    at::Tensor src = reader.view(name);
    bool src_float = at::isFloatingType(src.scalar_type()), dst_float = at::isFloatingType(param.scalar_type());
    if (src_float != dst_float)
      fail("{}: tensor '{}' is {} in the checkpoint but the {} expects {}", reader.dir(), name, info.dtype, what,
           c10::toString(param.scalar_type()));
    const_cast<at::Tensor&>(param).copy_(src);
  }
}

void save_checkpoint(const std::string& dir, const NamedTensors& tensors, uint64_t max_shard_bytes,
                     const std::map<std::string, std::string>& metadata, const std::string& stem) {
  ensure_dir(dir);
  uint64_t total = 0;
  for (const auto& [_, t] : tensors) total += static_cast<uint64_t>(t.numel()) * t.element_size();
  // Group consecutive tensors into shards under the cap (a tensor larger than the cap gets a shard alone).
  std::vector<NamedTensors> shards(1);
  uint64_t current = 0;
  for (const auto& nt : tensors) {
    uint64_t bytes = static_cast<uint64_t>(nt.second.numel()) * nt.second.element_size();
    if (!shards.back().empty() && current + bytes > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(nt);
    current += bytes;
  }
  fs::path single = fs::path(dir) / (stem + ".safetensors");
  fs::path index = fs::path(dir) / (stem + ".safetensors.index.json");
  // Remove the other layout's files so that a reader never sees both.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string fn = entry.path().filename().string();
    if (fn.rfind(stem + "-", 0) == 0 && fn.find("-of-") != std::string::npos) fs::remove(entry.path(), ec);
  }
  if (shards.size() == 1) {
    fs::remove(index, ec);
    save_safetensors(single.string(), shards[0], metadata);
    return;
  }
  fs::remove(single, ec);
  json weight_map = json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    std::string name = fmt::format("{}-{:05d}-of-{:05d}.safetensors", stem, i + 1, shards.size());
    save_safetensors((fs::path(dir) / name).string(), shards[i], metadata);
    for (const auto& [n, _] : shards[i]) weight_map[n] = name;
  }
  json idx = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  write_file_atomic(index.string(), idx.dump(2) + "\n");
}

}  // namespace ellm
