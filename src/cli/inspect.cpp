// ellm inspect PATH: what is inside an artifact, validated on the way.
// A safetensors file, a model directory (config, weights, tokenizer, adapter),
// a JSONL file (records, schema) or a JSON file.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "commands.h"
#include "ellm/io/checkpoint.h"
#include "ellm/io/jsonl.h"
#include "ellm/util/error.h"
#include "ellm/util/strings.h"

namespace fs = std::filesystem;

namespace ellm::cli {
namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void print_tensor_table(const std::vector<SafetensorInfo>& tensors, int limit) {
  std::map<std::string, int64_t> params_by_dtype;
  int64_t total = 0;
  for (const auto& t : tensors) {
    params_by_dtype[t.dtype] += t.numel();
    total += t.numel();
  }
  int shown = 0;
  for (const auto& t : tensors) {
    if (limit >= 0 && shown++ >= limit) {
      std::cout << fmt::format("  … {} more tensors (--all to list them)\n", tensors.size() - limit);
      break;
    }
    std::cout << fmt::format("  {:<60} {:<5} {}\n", t.name, t.dtype, shape_str(t.shape));
  }
  std::cout << fmt::format("tensors: {}   elements: {}", tensors.size(), total);
  for (const auto& [dt, n] : params_by_dtype) std::cout << fmt::format("   {}: {}", dt, n);
  std::cout << "\n";
}

void inspect_safetensors(const std::string& path, int limit) {
  SafetensorsFile f(path);
  std::cout << fmt::format("safetensors: {} ({} of data)\n", path, format_bytes(static_cast<double>(f.data_bytes())));
  if (!f.metadata().empty()) {
    std::cout << "metadata:\n";
    for (const auto& [k, v] : f.metadata()) std::cout << fmt::format("  {}: {}\n", k, v);
  }
  std::vector<SafetensorInfo> sorted = f.tensors();
  std::sort(sorted.begin(), sorted.end(), [](auto& a, auto& b) { return a.name < b.name; });
  print_tensor_table(sorted, limit);
}

std::string json_type(const json& v) {
  if (v.is_number_integer()) return "int";
  if (v.is_number_float()) return "float";
  return v.type_name();
}

// Record count and a schema: each key path with the types seen and how often present.
void inspect_jsonl(const std::string& path, int limit) {
  std::map<std::string, std::pair<int64_t, std::set<std::string>>> schema;
  JsonlReader reader(path);
  json record;
  std::vector<json> first;
  std::function<void(const json&, const std::string&, int)> walk = [&](const json& v, const std::string& prefix, int depth) {
    auto& slot = schema[prefix];
    slot.first++;
    slot.second.insert(json_type(v));
    if (v.is_object() && depth < 2)
      for (auto it = v.begin(); it != v.end(); ++it) walk(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), depth + 1);
  };
  while (reader.next(record)) {
    if (first.size() < 1) first.push_back(record);
    walk(record, "", 0);
  }
  std::cout << fmt::format("jsonl: {}\nrecords: {}\n", path, reader.records());
  std::cout << "schema (field: types, present in N records):\n";
  int shown = 0;
  for (const auto& [key, info] : schema) {
    if (key.empty()) continue;
    if (limit >= 0 && shown++ >= std::max(limit, 40)) {
      std::cout << "  …\n";
      break;
    }
    std::cout << fmt::format("  {:<40} {:<20} {}\n", key, join({info.second.begin(), info.second.end()}, "|"), info.first);
  }
  if (!first.empty()) {
    std::string s = first[0].dump();
    if (s.size() > 400) s = s.substr(0, 400) + "…";
    std::cout << "first record: " << s << "\n";
  }
}

void inspect_model_dir(const std::string& dir, int limit) {
  std::cout << fmt::format("directory: {}\n", dir);
  fs::path config = fs::path(dir) / "config.json";
  if (fs::exists(config)) {
    json c = read_json_file(config.string());
    std::cout << "config.json:";
    for (const char* key : {"model_type", "architectures", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "num_key_value_heads", "intermediate_size", "vocab_size", "torch_dtype", "ellm_task"})
      if (c.contains(key)) std::cout << fmt::format(" {}={}", key, c[key].dump());
    std::cout << "\n";
  }
  for (const char* f : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "spm.model"})
    if (fs::exists(fs::path(dir) / f)) std::cout << fmt::format("tokenizer file: {}\n", f);
  bool any = false;
  for (const char* stem : {"model", "adapter_model", "targets"}) {
    if (!has_checkpoint(dir, stem)) continue;
    any = true;
    CheckpointReader r(dir, stem);
    std::vector<SafetensorInfo> infos;
    for (const auto& n : r.names()) infos.push_back(r.info(n));
    std::cout << fmt::format("{} weights ({}):\n", stem, format_bytes(static_cast<double>(r.total_bytes())));
    print_tensor_table(infos, limit);
  }
  if (fs::exists(fs::path(dir) / "adapter_config.json"))
    std::cout << "adapter_config.json: " << read_json_file((fs::path(dir) / "adapter_config.json").string()).dump() << "\n";
  if (!any) {
    std::cout << "files:\n";
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string() + (e.is_directory() ? "/" : ""));
    std::sort(names.begin(), names.end());
    for (const auto& n : names) std::cout << "  " << n << "\n";
  }
}

}  // namespace

void add_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "show what is inside an artifact (safetensors, model dir, JSONL, JSON), "
                                            "validating it");
  static std::string path;
  static bool all = false;
  cmd->add_option("path", path, "file or directory")->required();
  cmd->add_flag("--all", all, "list every tensor / field");
  cmd->callback([] {
    int limit = all ? -1 : 40;
    if (!fs::exists(path)) fail("{}: no such file or directory", path);
    if (fs::is_directory(path)) return inspect_model_dir(path, limit);
    if (ends_with(path, ".safetensors")) return inspect_safetensors(path, limit);
    if (ends_with(path, ".jsonl")) return inspect_jsonl(path, limit);
    if (ends_with(path, ".json")) {
      std::cout << read_json_file(path).dump(2) << "\n";
      return;
    }
    fail("{}: unknown artifact type (expected .safetensors, .jsonl, .json or a directory)", path);
  });
}

}  // namespace ellm::cli
