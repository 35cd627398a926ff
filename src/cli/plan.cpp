// ellm plan: parameter counts and the per-GPU memory plan for fine-tuning a decoder
// (built on the meta device: nothing is allocated, a 7B plans in milliseconds).
#include <fmt/format.h>

#include <iostream>

#include "commands.h"
#include "ellm/models/memory_plan.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"

namespace ellm::cli {
namespace {

std::string gib(double bytes) { return fmt::format("{:.2f}", bytes / (1024.0 * 1024.0 * 1024.0)); }

}  // namespace

void add_plan(CLI::App& app) {
  auto* cmd = app.add_subcommand("plan", "parameter counts and memory per GPU for LoRA / full fine-tuning of a decoder");
  static std::string model, mode = "both", dtype = "bf16";
  static int64_t gpus = 1, batch = 8, seq = 1024, lora_r = 16;
  static double lora_alpha = 32, lora_dropout = 0.05, gpu_gib = 80;
  cmd->add_option("--model", model, "model config (configs/models/NAME.json) or model directory")->required();
  cmd->add_option("--gpus", gpus, "data-parallel ranks")->capture_default_str();
  cmd->add_option("--batch", batch, "global batch (sequences per optimizer micro-step, split across GPUs)")
      ->capture_default_str();
  cmd->add_option("--seq", seq, "sequence length (tokens)")->capture_default_str();
  cmd->add_option("--mode", mode, "lora | full | both")->capture_default_str();
  cmd->add_option("--dtype", dtype, "weight dtype: bf16 | fp16 | fp32")->capture_default_str();
  cmd->add_option("--lora-r", lora_r, "LoRA rank")->capture_default_str();
  cmd->add_option("--lora-alpha", lora_alpha, "LoRA alpha")->capture_default_str();
  cmd->add_option("--lora-dropout", lora_dropout, "LoRA dropout")->capture_default_str();
  cmd->add_option("--gpu-memory", gpu_gib, "GiB per GPU, to say what fits")->capture_default_str();
  cmd->callback([] {
    if (mode != "lora" && mode != "full" && mode != "both") fail("--mode must be lora, full or both, got '{}'", mode);
    if (gpus <= 0 || batch <= 0 || seq <= 0) fail("--gpus, --batch and --seq must be positive");
    MemoryPlanInput in;
    in.config = DecoderConfig::load(model);
    in.gpus = gpus;
    in.batch = batch;
    in.seq = seq;
    in.weight_dtype = parse_dtype(dtype);
    in.lora_config.r = lora_r;
    in.lora_config.alpha = lora_alpha;
    in.lora_config.dropout = lora_dropout;
    json out = {{"model", model}, {"gpus", gpus}, {"batch", batch}, {"seq", seq}, {"dtype", dtype},
                {"gpu_memory_gib", gpu_gib}, {"plans", json::array()}};
    std::string table = fmt::format("{:<5} {:<5} {:>14} {:>14} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9}  {}\n", "mode",
                                    "ckpt", "params", "trainable", "weights", "grads", "optim", "activation",
                                    "logits", "total", "fits");
    for (const char* m : {"lora", "full"}) {
      if (mode != "both" && mode != m) continue;
      for (bool ckpt : {false, true}) {
        in.lora = std::string(m) == "lora";
        in.gradient_checkpointing = ckpt;
        MemoryPlan p = plan_memory(in);
        bool fits = p.total() * 1.1 <= gpu_gib * 1024.0 * 1024.0 * 1024.0;
        json j = p.to_json();
        j["mode"] = m;
        j["gradient_checkpointing"] = ckpt;
        j["fits"] = fits;
        out["plans"].push_back(j);
        table += fmt::format("{:<5} {:<5} {:>14} {:>14} {:>9} {:>9} {:>9} {:>11} {:>9} {:>9}  {}\n", m,
                             ckpt ? "yes" : "no", p.total_params, p.trainable_params, gib(p.weights), gib(p.gradients),
                             gib(p.optimizer), gib(p.activations), gib(p.logits), gib(p.total()),
                             fits ? "yes" : "no (+10% headroom)");
      }
    }
    std::cout << out.dump(2) << "\n\n"
              << fmt::format("per GPU, GiB; {} GPU(s), global batch {} (micro-batch {} per GPU) × {} tokens, {} weights\n",
                             gpus, batch, (batch + gpus - 1) / gpus, seq, dtype)
              << table;
  });
}

}  // namespace ellm::cli
