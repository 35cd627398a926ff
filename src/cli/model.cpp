// ellm model init | merge: decoder model directories in the Hugging Face layout.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ellm/io/atomic_file.h"
#include "ellm/models/decoder.h"
#include "ellm/models/lora.h"
#include "ellm/text/tokenizer.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"

namespace ellm::cli {
namespace fs = std::filesystem;

namespace {

// The tokenizer file to ship with a model: tokenizer.json keeps its name, a
// SentencePiece model becomes tokenizer.model (the names load_tokenizer looks for).
void copy_tokenizer(const std::string& tokenizer_path, const std::string& out_dir) {
  fs::path src = tokenizer_path;
  if (fs::is_directory(src)) {
    for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.txt"})
      if (fs::exists(src / name)) fs::copy_file(src / name, fs::path(out_dir) / name, fs::copy_options::overwrite_existing);
    return;
  }
  std::string target = src.extension() == ".model" ? "tokenizer.model" : src.filename().string();
  fs::copy_file(src, fs::path(out_dir) / target, fs::copy_options::overwrite_existing);
}

void add_init(CLI::App& model) {
  auto* cmd = model.add_subcommand("init", "a randomly initialised decoder (N(0, initializer_range)) in the HF layout");
  static std::string config, tokenizer, out, dtype = "fp32";
  static uint64_t seed = 0;
  cmd->add_option("--config", config, "model geometry (configs/models/NAME.json)")->required();
  cmd->add_option("--tokenizer", tokenizer, "tokenizer file or dir: sets vocab_size, bos/eos, and is copied into --out");
  cmd->add_option("--out", out, "output model directory")->required();
  cmd->add_option("--seed", seed, "initialisation seed")->capture_default_str();
  cmd->add_option("--dtype", dtype, "weight dtype: fp32 | bf16 | fp16")->capture_default_str();
  cmd->callback([] {
    DecoderConfig cfg = DecoderConfig::load(config);
    std::shared_ptr<Tokenizer> tok;
    if (!tokenizer.empty()) {
      tok = load_tokenizer(tokenizer);
      cfg.vocab_size = tok->vocab_size();
      cfg.bos_token_id = tok->bos_id();
      cfg.eos_token_ids.clear();
      if (tok->eos_id()) cfg.eos_token_ids.push_back(*tok->eos_id());
    }
    Decoder m = make_decoder(cfg, parse_dtype(dtype), torch::kCPU, seed);
    AtomicDir dir(out);
    save_decoder(m, dir.staging());
    if (!tokenizer.empty()) copy_tokenizer(tokenizer, dir.staging());
    dir.commit();
    spdlog::info("{}: {} decoder, {} parameters, vocab {}, {}", out, cfg.model_type, m->num_parameters(),
                 cfg.vocab_size, dtype);
    std::cout << json({{"out", out}, {"parameters", m->num_parameters()}, {"vocab_size", cfg.vocab_size}}).dump() << "\n";
  });
}

void add_merge(CLI::App& model) {
  auto* cmd = model.add_subcommand("merge", "merge a PEFT LoRA adapter into its base: a plain HF model directory");
  static std::string base, adapter, out, dtype = "";
  cmd->add_option("--model", base, "base model directory")->required();
  cmd->add_option("--adapter", adapter, "adapter directory (adapter_config.json + adapter_model.safetensors)")->required();
  cmd->add_option("--out", out, "output model directory")->required();
  cmd->add_option("--dtype", dtype, "output dtype (default: the base's torch_dtype)");
  cmd->callback([] {
    DecoderConfig cfg = DecoderConfig::load(base);
    torch::Dtype dt = dtype.empty() ? hf_dtype_from_name(cfg.torch_dtype, base) : parse_dtype(dtype);
    // Merge in fp32, then cast once, so that bf16 rounding happens a single time.
    Decoder m = load_decoder(base, torch::kFloat32, torch::kCPU);
    load_adapter(m, adapter);
    merge_lora(m);
    if (dt != torch::kFloat32) m->to(dt);
    AtomicDir dir(out);
    save_decoder(m, dir.staging());
    for (const auto& e : fs::directory_iterator(base)) {
      std::string name = e.path().filename().string();
      if (name.rfind("tokenizer", 0) == 0 || name == "vocab.txt" || name == "ellm_teacher.json" ||
          e.path().extension() == ".model")
        fs::copy_file(e.path(), fs::path(dir.staging()) / name, fs::copy_options::overwrite_existing);
    }
    dir.commit();
    spdlog::info("{}: merged {} into {}", out, adapter, base);
  });
}

}  // namespace

void add_model(CLI::App& app) {
  auto* model = app.add_subcommand("model", "decoder model directories: init, merge");
  model->require_subcommand(1);
  add_init(*model);
  add_merge(*model);
}

}  // namespace ellm::cli
