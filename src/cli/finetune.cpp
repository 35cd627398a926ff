// ellm finetune: SFT of the ELLM-rele teacher on annotations (LoRA or full), one
// process or many (`ellm launch -n N -- finetune ...`, c10d). Phases: load the base
// and tokenizer, read and encode the data, set up the task, train, write final/.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ellm/train/distributed.h"
#include "ellm/train/sft.h"
#include "ellm/train/trainer.h"
#include "ellm/util/device.h"
#include "ellm/util/error.h"
#include "ellm/util/build_paths.h"

namespace ellm::cli {
namespace fs = std::filesystem;

json finetune_default_config() {
  return {
      {"model", {{"base", ""}, {"config", ""}, {"tokenizer", ""}, {"dtype", "fp32"}, {"device", "auto"},
                 {"gradient_checkpointing", false}}},
      {"data", {{"annotations", ""}, {"eval_annotations", ""}, {"eval_fraction", 0.05}, {"cot", true},
                {"prompt", "configs/prompts/teacher.json"}, {"chat_template", ""}, {"dataset", ""},
                {"max_length", 1024}}},
      {"lora", {{"enabled", true}, {"r", 16}, {"alpha", 32.0}, {"dropout", 0.05},
                {"target_modules", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}},
                {"merge_final", true}}},
      {"train", train_default_config()},
  };
}

namespace {

std::string resolve_source_path(const std::string& path) {
  if (path.empty() || fs::exists(path)) return path;
  fs::path in_tree = fs::path(ellm::source_dir()) / path;
  return fs::exists(in_tree) ? in_tree.string() : path;
}

}  // namespace

void add_finetune(CLI::App& app) {
  auto* cmd = app.add_subcommand("finetune", "SFT of the decoder teacher on annotations (prompt → CoT + grade)");
  static ConfigOptions config;
  static std::string out, resume, device_flag;
  add_config_options(cmd, config);
  cmd->add_option("--out", out, "run directory (checkpoint-<step>/, metrics.jsonl, final/)")->required();
  cmd->add_option("--device", device_flag, "cpu | cuda | auto (overrides model.device)");
  cmd->add_option("--resume", resume, "'auto': continue from the newest complete checkpoint in --out");
  cmd->callback([] {
    if (!resume.empty() && resume != "auto") fail("--resume takes 'auto', got '{}'", resume);
    json cfg = config.resolve(finetune_default_config());
    const json& m = cfg["model"];
    const json& d = cfg["data"];
    const json& l = cfg["lora"];
    std::string base = m["base"], geometry = m["config"], annotations = d["annotations"];
    if (base.empty() && geometry.empty())
      fail("model.base (a model directory, e.g. from `ellm model init`) or model.config (a geometry to train "
           "from scratch) is required");
    if (base.empty() && m["tokenizer"].get<std::string>().empty())
      fail("model.config (training from scratch) needs model.tokenizer");
    if (annotations.empty()) fail("data.annotations is required (annotations.jsonl from `ellm annotate`)");
    TrainConfig train = train_config_from_json(cfg["train"]);
    torch::Device device = resolve_device(device_flag.empty() ? m["device"].get<std::string>() : device_flag);

    DistEnv env = read_dist_env();
    Distributed dist = env.world_size > 1
                           ? Distributed(env, device, std::chrono::seconds(static_cast<int64_t>(train.dist_timeout_s)))
                           : Distributed();
    if (dist.is_main()) save_resolved_config(out, cfg);

    // Load: base model, tokenizer, templates, grades.
    DecoderConfig base_cfg = DecoderConfig::load(base.empty() ? resolve_source_path(geometry) : base);
    std::string tok_path = m["tokenizer"].get<std::string>().empty() ? base : m["tokenizer"].get<std::string>();
    std::shared_ptr<Tokenizer> tok = load_tokenizer(tok_path);
    if (base.empty()) {
      base_cfg.vocab_size = tok->vocab_size();
      base_cfg.bos_token_id = tok->bos_id();
      base_cfg.eos_token_ids.clear();
      if (tok->eos_id()) base_cfg.eos_token_ids.push_back(*tok->eos_id());
    }
    if (tok->vocab_size() > base_cfg.vocab_size)
      fail("{}: the tokenizer has {} tokens but the model's vocab_size is {}", tok_path, tok->vocab_size(),
           base_cfg.vocab_size);
    std::string chat_name = d["chat_template"];
    if (chat_name.empty()) chat_name = base_cfg.model_type == "llama" ? "llama3" : "qwen2";
    ChatTemplate chat = ChatTemplate::load(chat_name);
    std::string dataset = d["dataset"];
    GradeScale grades = dataset.empty() ? grade_scale_for(annotations)
                                        : GradeScale::from_json(read_json_file(dataset).value("grades", json::object()), dataset);
    std::string prompt_path = d["prompt"];
    PromptTemplate prompt = load_prompt_template(prompt_path, grades);

    // Data.
    bool cot = d["cot"];
    SftReadStats stats;
    auto records = read_sft_records(annotations, grades, cot, &stats);
    std::vector<SftRecord> eval_records;
    if (!d["eval_annotations"].get<std::string>().empty()) {
      eval_records = read_sft_records(d["eval_annotations"], grades, cot);
    } else if (double frac = d["eval_fraction"]; frac > 0 && records.size() > 1) {
      // A seeded, fixed hold-out: the same pairs on every rank and on resume.
      auto perm = epoch_permutation(static_cast<int64_t>(records.size()), train.seed ^ 0x5eedULL, 0);
      size_t k = std::max<size_t>(1, static_cast<size_t>(frac * records.size()));
      std::vector<bool> held(records.size(), false);
      for (size_t i = 0; i < k; ++i) held[perm[i]] = true;
      std::vector<SftRecord> kept;
      for (size_t i = 0; i < records.size(); ++i) (held[i] ? eval_records : kept).push_back(std::move(records[i]));
      records = std::move(kept);
    }
    int64_t max_length = d["max_length"], dropped = 0;
    auto train_ex = encode_sft(records, prompt, chat, *tok, grades, max_length, &dropped);
    auto eval_ex = encode_sft(eval_records, prompt, chat, *tok, grades, max_length);
    spdlog::info("{}: {} records ({} flagged, {} CoTs unparsed), {} train / {} eval examples ({} too long), CoT {}",
                 annotations, stats.read, stats.flagged, stats.unparsed, train_ex.size(), eval_ex.size(), dropped,
                 cot ? "on" : "off");

    // Setup.
    SftOptions opt;
    opt.lora = l["enabled"];
    opt.lora_config.r = l["r"];
    opt.lora_config.alpha = l["alpha"];
    opt.lora_config.dropout = l["dropout"];
    opt.lora_config.target_modules = l["target_modules"].get<std::vector<std::string>>();
    opt.merge_final = l["merge_final"];
    opt.gradient_checkpointing = m["gradient_checkpointing"];
    opt.seed = train.seed;
    opt.pad_id = tok->pad_id().value_or(tok->eos_id().value_or(0));
    opt.eval_batch = train.micro_batch_size;
    opt.teacher_info = {{"chat_template", chat_name},
                        {"prompt_template", prompt_path},
                        {"prompt_template_file", "prompt_template.json"},
                        {"cot", cot},
                        {"grades", grades.to_json()},
                        {"max_length", max_length},
                        {"base_model", base.empty() ? geometry : base},
                        {"stop_tokens", chat.stop_tokens()}};
    opt.files_to_copy.emplace_back(resolve_source_path(prompt.source), "prompt_template.json");
    fs::path tp = tok_path;
    if (fs::is_directory(tp)) {
      for (const auto& e : fs::directory_iterator(tp)) {
        std::string n = e.path().filename().string();
        if (n == "tokenizer.json" || n == "tokenizer_config.json" || n == "vocab.txt" || e.path().extension() == ".model")
          opt.files_to_copy.emplace_back(e.path().string(), n);
      }
    } else {
      opt.files_to_copy.emplace_back(tok_path, tp.extension() == ".model" ? "tokenizer.model" : tp.filename().string());
    }
    torch::manual_seed(train.seed);
    Decoder model = base.empty() ? make_decoder(base_cfg, parse_dtype(m["dtype"]), device, train.seed)
                                 : load_decoder(base, parse_dtype(m["dtype"]), device);
    SftTask task(model, std::move(train_ex), std::move(eval_ex), opt);

    // Train (checkpoints, metrics, final/ are the Trainer's).
    Trainer trainer(train, out, dist);
    TrainResult r = trainer.fit(task, resume == "auto");
    if (dist.is_main())
      std::cout << json({{"out", out}, {"steps", r.steps}, {"final_loss", r.final_loss},
                         {"final", (fs::path(out) / "final").string()}, {"best", r.best.metrics}})
                       .dump()
                << "\n";
  });
}

}  // namespace ellm::cli
