// ellm pretrain: masked-language-model pre-training of a student BERT encoder
// from scratch on catalogue text, on the shared Trainer (distill/pretrain_stage.h).
// Its OUT/final is a Hugging Face BertForMaskedLM directory that
// `ellm distill --set init_from=OUT/final` starts a student from.
#include <iostream>

#include "commands.h"
#include "ellm/distill/pretrain_stage.h"
#include "ellm/util/error.h"

namespace ellm::cli {

void add_pretrain(CLI::App& app) {
  auto* cmd = app.add_subcommand("pretrain", "MLM pre-training of a student encoder on catalogue text (queries and "
                                             "item texts of pairs.jsonl, or one text per line)");
  static ConfigOptions config;
  static PretrainPaths paths;
  static std::string tokenizer, resume = "auto";
  cmd->add_option("--pairs", paths.pairs, "pairs.jsonl: its queries and item texts (data.split), each distinct text once");
  cmd->add_option("--text", paths.text, "plain text file, one text per line (instead of --pairs)");
  cmd->add_option("--tokenizer", tokenizer, "student tokenizer (overrides the config's \"tokenizer\")");
  cmd->add_option("--out", paths.out, "output directory (metrics.jsonl, final/, best/, checkpoints)")->required();
  cmd->add_option("--resume", resume, "auto: continue from the newest checkpoint in --out; never: start fresh")
      ->check(CLI::IsMember({"auto", "never"}))
      ->capture_default_str();
  add_config_options(cmd, config);
  cmd->callback([] {
    json cfg = config.resolve(pretrain_default_config());
    if (!tokenizer.empty()) cfg["tokenizer"] = tokenizer;
    DistEnv env = read_dist_env();
    std::unique_ptr<Distributed> dist;
    if (env.world_size > 1)
      dist = std::make_unique<Distributed>(
          env, c10::Device(c10::kCPU),
          std::chrono::seconds(static_cast<int64_t>(cfg["train"]["dist_timeout_s"].get<double>())));
    else
      dist = std::make_unique<Distributed>();
    TrainResult r = run_pretrain(cfg, paths, resume == "auto", *dist);
    if (dist->is_main())
      std::cout << json{{"steps", r.steps}, {"final_loss", r.final_loss}, {"best", r.best.metrics}, {"out", paths.out},
                        {"init_from", paths.out + "/final"}}
                       .dump()
                << "\n";
  });
}

}  // namespace ellm::cli
