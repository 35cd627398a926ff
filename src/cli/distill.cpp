// ellm distill: train a student (cross-encoder or two-tower) with MKD on the
// shared Trainer; ellm distill export-items: precomputed two-tower item vectors.
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <iostream>
#include <set>

#include "commands.h"
#include "ellm/distill/distill_stage.h"
#include "ellm/io/safetensors.h"
#include "ellm/models/student.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"

namespace ellm::cli {

namespace {

void add_export_items(CLI::App* distill) {
  auto* cmd = distill->add_subcommand(
      "export-items", "precompute a two-tower student's item vectors (safetensors: item_embeddings [N,P], item ids in "
                      "the metadata)");
  static std::string model, pairs, out, dtype = "fp32";
  static int64_t batch = 64;
  cmd->add_option("--model", model, "two-tower student directory")->required();
  cmd->add_option("--pairs", pairs, "pairs.jsonl whose distinct items (by item id) to embed")->required();
  cmd->add_option("--out", out, "output .safetensors file")->required();
  cmd->add_option("--batch", batch, "items per forward pass")->capture_default_str();
  cmd->add_option("--dtype", dtype, "the encoder's compute dtype: fp32 | bf16 (vectors are saved as fp32)")
      ->capture_default_str();
  cmd->callback([] {
    auto student = load_student(model);
    student->set_inference_dtype(parse_dtype(dtype));
    ELLM_CHECK(student->kind() == StudentKind::two_tower, "{}: export-items needs a two-tower student (model_type {})",
               model, student_model_type(student->kind()));
    std::vector<Item> items;
    std::set<std::string> seen;
    json ids = json::array();
    for (const Pair& p : read_pairs(pairs)) {
      const std::string& key = p.item.id.empty() ? p.item.title : p.item.id;
      if (!seen.insert(key).second) continue;
      items.push_back(p.item);
      ids.push_back(key);
    }
    torch::Tensor emb = student->item_embeddings(items, batch);
    save_safetensors(out, {{"item_embeddings", emb}},
                     {{"item_ids", ids.dump()}, {"model", model}, {"model_type", student_model_type(student->kind())},
                      {"normalised", "l2"}});
    spdlog::info("wrote {} item vectors of size {} to {}", emb.size(0), emb.size(1), out);
  });
}

}  // namespace

void add_distill(CLI::App& app) {
  auto* cmd = app.add_subcommand("distill", "train a student with multi-dimensional knowledge distillation (MKD)");
  static ConfigOptions config;
  static DistillPaths paths;
  static std::string tokenizer, resume = "auto";
  cmd->add_option("--pairs", paths.pairs, "pairs.jsonl (train split; also the dev split unless --dev)");
  cmd->add_option("--dev", paths.dev, "separate dev pairs file (its dev split, see data.dev_split)");
  cmd->add_option("--teacher", paths.teacher, "teacher output directory (teacher.jsonl + targets.safetensors)");
  cmd->add_option("--out", paths.out, "output directory (metrics.jsonl, best/, final/, checkpoints)");
  cmd->add_option("--tokenizer", tokenizer, "student tokenizer (overrides the config's \"tokenizer\")");
  cmd->add_option("--resume", resume, "auto: continue from the newest checkpoint in --out; never: start fresh")
      ->check(CLI::IsMember({"auto", "never"}))
      ->capture_default_str();
  add_config_options(cmd, config);
  add_export_items(cmd);
  cmd->callback([cmd] {
    if (!cmd->get_subcommands().empty()) return;  // export-items ran
    json cfg = config.resolve(distill_default_config());
    if (!tokenizer.empty()) cfg["tokenizer"] = tokenizer;
    DistEnv env = read_dist_env();
    std::unique_ptr<Distributed> dist;
    if (env.world_size > 1)
      dist = std::make_unique<Distributed>(env, c10::Device(c10::kCPU),
                                           std::chrono::seconds(static_cast<int64_t>(cfg["train"]["dist_timeout_s"].get<double>())));
    else
      dist = std::make_unique<Distributed>();
    TrainResult r = run_distill(cfg, paths, resume == "auto", *dist);
    if (dist->is_main())
      std::cout << json{{"steps", r.steps}, {"final_loss", r.final_loss}, {"best", r.best.metrics},
                        {"stopped_early", r.stopped_early}, {"out", paths.out}}
                       .dump()
                << "\n";
  });
}

}  // namespace ellm::cli
