// LoRA branches on the decoder's Linear modules, in PEFT's layout.
#include "ellm/models/lora.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <map>

#include "ellm/io/atomic_file.h"
#include "ellm/io/checkpoint.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace ellm {
namespace fs = std::filesystem;

namespace {

const char* kPeftPrefix = "base_model.model.";

bool targeted(const std::string& module, const std::vector<std::string>& targets) {
  for (const auto& t : targets) {
    if (module == t) return true;
    if (module.size() > t.size() && module.compare(module.size() - t.size(), t.size(), t) == 0 &&
        module[module.size() - t.size() - 1] == '.')
      return true;
  }
  return false;
}

std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> linears(Decoder& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LinearImpl>>> out;
  for (const auto& item : model->named_modules("", /*include_self=*/false))
    if (auto lin = std::dynamic_pointer_cast<LinearImpl>(item.value())) out.emplace_back(item.key(), lin);
  return out;
}

}  // namespace

double LoraConfig::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

json LoraConfig::to_peft_json() const {
  return {{"peft_type", "LORA"},
          {"task_type", "CAUSAL_LM"},
          {"r", r},
          {"lora_alpha", alpha},
          {"lora_dropout", dropout},
          {"target_modules", target_modules},
          {"bias", "none"},
          {"fan_in_fan_out", false},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"use_rslora", use_rslora},
          {"use_dora", false},
          {"modules_to_save", nullptr},
          {"layers_to_transform", nullptr},
          {"base_model_name_or_path", base_model_name_or_path.empty() ? json(nullptr) : json(base_model_name_or_path)}};
}

LoraConfig LoraConfig::from_peft_json(const json& j, const std::string& where) {
  if (!j.is_object()) fail("{}: adapter config must be a JSON object", where);
  if (j.value("peft_type", std::string("LORA")) != "LORA")
    fail("{}: peft_type '{}' is not supported (LORA only)", where, j.value("peft_type", std::string()));
  LoraConfig c;
  try {
    c.r = j.at("r").get<int64_t>();
    c.alpha = j.value("lora_alpha", static_cast<double>(c.r));
    c.dropout = j.value("lora_dropout", 0.0);
    c.use_rslora = j.value("use_rslora", false);
    const json& tm = j.at("target_modules");
    if (tm.is_string()) fail("{}: target_modules as a regular expression is not supported; list module names", where);
    c.target_modules = tm.get<std::vector<std::string>>();
    if (j.contains("base_model_name_or_path") && j["base_model_name_or_path"].is_string())
      c.base_model_name_or_path = j["base_model_name_or_path"].get<std::string>();
  } catch (const json::exception& e) {
    fail("{}: bad adapter config: {}", where, e.what());
  }
  for (const char* unsupported : {"use_dora", "fan_in_fan_out"})
    if (j.value(unsupported, false)) fail("{}: {}=true is not supported", where, unsupported);
  if (j.contains("bias") && j["bias"] != "none") fail("{}: bias={} is not supported (\"none\" only)", where, j["bias"].dump());
  if (j.contains("modules_to_save") && !j["modules_to_save"].is_null() && !j["modules_to_save"].empty())
    fail("{}: modules_to_save is not supported", where);
  if (c.r <= 0) fail("{}: r must be positive, got {}", where, c.r);
  return c;
}

void apply_lora(Decoder& model, const LoraConfig& config, uint64_t seed) {
  ELLM_CHECK(config.r > 0, "LoRA rank must be positive, got {}", config.r);
  ELLM_CHECK(config.dropout >= 0 && config.dropout < 1, "LoRA dropout must be in [0, 1), got {}", config.dropout);
  torch::NoGradGuard no_grad;
  for (auto& [_, p] : model->base_parameters()) p.set_requires_grad(false);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  int matched = 0;
  for (auto& [name, lin] : linears(model)) {
    if (!targeted(name, config.target_modules)) continue;
    if (lin->has_lora()) fail("module {} already has a LoRA adapter", name);
    // LoRA weights stay fp32 whatever the base dtype (cast in forward), so that small
    // updates are not lost to bf16 rounding.
    auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(lin->weight.device());
    lin->lora_A = lin->register_module("lora_A", Weight(std::vector<int64_t>{config.r, lin->in_features}, opts));
    lin->lora_B = lin->register_module("lora_B", Weight(std::vector<int64_t>{lin->out_features, config.r}, opts));
    // kaiming_uniform_(a=√5) on [r, in]: U(-1/√in, 1/√in).
    if (!opts.device().is_meta()) {  // a meta model (memory planning) has no values to set
      double bound = 1.0 / std::sqrt(static_cast<double>(lin->in_features));
      lin->lora_A->weight.copy_(torch::empty({config.r, lin->in_features}, torch::kFloat32).uniform_(-bound, bound, gen));
      lin->lora_B->weight.zero_();
    }
    lin->lora_scaling = config.scaling();
    lin->lora_dropout = config.dropout;
    ++matched;
  }
  if (matched == 0) fail("LoRA target_modules {} match no linear layer of the model", json(config.target_modules).dump());
}

std::vector<std::pair<std::string, torch::Tensor>> lora_parameters(Decoder& model) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (auto& [name, lin] : linears(model)) {
    if (!lin->has_lora()) continue;
    out.emplace_back(kPeftPrefix + name + ".lora_A.weight", lin->lora_A->weight);
    out.emplace_back(kPeftPrefix + name + ".lora_B.weight", lin->lora_B->weight);
  }
  return out;
}

void save_adapter(Decoder& model, const LoraConfig& config, const std::string& dir) {
  auto params = lora_parameters(model);
  ELLM_CHECK(!params.empty(), "save_adapter: the model has no LoRA branches");
  ensure_dir(dir);
  NamedTensors tensors;
  for (auto& [n, p] : params) tensors.emplace_back(n, p.detach());
  save_safetensors((fs::path(dir) / "adapter_model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "adapter_config.json").string(), config.to_peft_json().dump(2) + "\n");
}

bool has_adapter(const std::string& dir) {
  return fs::exists(fs::path(dir) / "adapter_config.json") && fs::exists(fs::path(dir) / "adapter_model.safetensors");
}

LoraConfig load_adapter(Decoder& model, const std::string& dir) {
  std::string cfg_path = (fs::path(dir) / "adapter_config.json").string();
  if (!fs::exists(cfg_path)) fail("{}: no adapter_config.json (not a PEFT LoRA adapter directory)", dir);
  LoraConfig config = LoraConfig::from_peft_json(read_json_file(cfg_path), cfg_path);
  apply_lora(model, config, 0);
  CheckpointReader reader(dir, "adapter_model");
  std::map<std::string, at::Tensor> params;
  for (auto& [n, p] : lora_parameters(model)) params.emplace(n, p);
  load_strict(params, reader, "LoRA adapter");
  return config;
}

void merge_lora(Decoder& model) {
  torch::NoGradGuard no_grad;
  int merged = 0;
  for (auto& [name, lin] : linears(model)) {
    if (!lin->has_lora()) continue;
    torch::Tensor delta = torch::mm(lin->lora_B->weight.to(torch::kFloat32), lin->lora_A->weight.to(torch::kFloat32)) *
                          lin->lora_scaling;
    lin->weight.copy_((lin->weight.to(torch::kFloat32) + delta.to(lin->weight.device())).to(lin->weight.scalar_type()));
    lin->unregister_module("lora_A");
    lin->unregister_module("lora_B");
    lin->lora_A = nullptr;
    lin->lora_B = nullptr;
    lin->lora_scaling = 0;
    ++merged;
  }
  ELLM_CHECK(merged > 0, "merge_lora: the model has no LoRA branches");
}

}  // namespace ellm
