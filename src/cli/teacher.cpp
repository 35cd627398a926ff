// ellm teacher: run the fine-tuned teacher over pairs → teacher.jsonl + targets.safetensors
// (sharded over `ellm launch` ranks, resumable); `ellm teacher inspect` shows one pair's targets.
#include <torch/torch.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/teacher/decoder_teacher.h"
#include "ellm/teacher/driver.h"
#include "ellm/teacher/targets_writer.h"
#include "ellm/text/tokenizer.h"
#include "ellm/train/distributed.h"
#include "ellm/util/device.h"
#include "ellm/util/log.h"

namespace ellm::cli {
namespace {

json teacher_defaults() {
  return {{"teacher",
           {{"max_new_tokens", 256},
            {"batch", 8},
            {"score_batch", 16},
            {"dtype", "fp32"},
            {"device", "auto"},
            {"prompt_template", ""},
            {"chat_template", ""}}},
          {"targets", {{"max_length", 64}, {"max_query_tokens", 32}, {"attention_factors", AttentionFactors().to_json()}}},
          {"dist", {{"merge_timeout_s", 24 * 3600}}}};
}

// "hf-bpe:/path/tokenizer.json" → "/path/tokenizer.json"
std::string tokenizer_path_from_metadata(const std::map<std::string, std::string>& meta) {
  auto it = meta.find("student_tokenizer_path");
  if (it != meta.end()) return it->second;
  std::string d = meta.at("student_tokenizer");
  auto colon = d.find(':');
  return colon == std::string::npos ? d : d.substr(colon + 1);
}

void inspect_targets(const std::string& dir, const std::string& id) {
  GradeScale grades;
  SafetensorsFile st(dir + "/targets.safetensors");
  if (st.metadata().count("grades")) grades = GradeScale::from_json(json::parse(st.metadata().at("grades")), st.path());
  int64_t row = -1;
  json rec;
  int64_t i = 0;
  for_each_jsonl(dir + "/teacher.jsonl", [&](const json& j, const JsonlReader&) {
    if (row < 0 && j.value("id", "") == id) {
      row = i;
      rec = j;
    }
    ++i;
  });
  if (row < 0) fail("{}/teacher.jsonl: no pair with id '{}'", dir, id);
  auto tok = load_tokenizer(tokenizer_path_from_metadata(st.metadata()));
  auto ids = st.load("input_ids")[row], seg = st.load("segment")[row], bio = st.load("bio")[row],
       attn = st.load("attn_factor")[row];
  std::cout << "id:      " << id << "  (row " << row << ")\n";
  std::cout << "query:   " << rec.value("query", "") << "\n";
  std::cout << "item:    " << rec.value("item_text", "") << "\n";
  std::cout << "probs:   ";
  for (size_t k = 0; k < grades.labels.size(); ++k)
    std::cout << grades.labels[k] << "=" << fmt::format("{:.3f}", rec["grade_probs"][k].get<double>()) << " ";
  std::cout << "\nscore:   " << fmt::format("{:.4f}", rec["score"].get<double>()) << "   pred: " << rec["pred"].get<std::string>()
            << (rec.value("flagged", false) ? "   FLAGGED: " + rec.value("parse_error", "") : "") << "\n";
  if (rec["cot"].is_string()) std::cout << "cot:\n" << rec["cot"].get<std::string>() << "\n";
  bool has_cot = st.load("has_cot")[row].item<uint8_t>() != 0;
  std::cout << (has_cot ? "" : "(no CoT targets for this pair: tags are all O, factors uniform)\n");
  std::cout << fmt::format("{:>4}  {:<20} {:<6} {:<8} {}\n", "pos", "token", "seg", "tag", "attn");
  static const char* segs[] = {"-", "query", "item"};
  int64_t pad = json::parse(st.metadata().at("special_ids"))["pad"].get<int64_t>();
  int64_t len = ids.size(0);
  while (len > 0 && ids[len - 1].item<int32_t>() == pad && seg[len - 1].item<uint8_t>() == 0) --len;
  for (int64_t t = 0; t < len; ++t) {
    int s = seg[t].item<uint8_t>();
    std::cout << fmt::format("{:>4}  {:<20} {:<6} {:<8} {:.4f}\n", t, json(tok->id_to_token(ids[t].item<int32_t>())).dump(),
                             segs[s], bio_tag_names()[bio[t].item<uint8_t>()], attn[t].item<float>());
  }
}

}  // namespace

void add_teacher(CLI::App& app) {
  auto* cmd = app.add_subcommand("teacher", "run the teacher over pairs: CoT, grade distribution, score, student targets");
  static std::string model, adapter, pairs_path, student_tok, out, split;
  static bool no_cot = false;
  static int64_t batch = 0, max_new = 0;
  static std::string device, dtype;
  static ConfigOptions config;
  cmd->add_option("--model", model, "teacher model directory (HF layout, e.g. finetune's final/)");
  cmd->add_option("--adapter", adapter, "LoRA adapter directory (PEFT layout) to apply");
  cmd->add_option("--pairs", pairs_path, "pairs.jsonl (grades from dataset.json beside it)");
  cmd->add_option("--student-tokenizer", student_tok, "the student's tokenizer (file or directory)");
  cmd->add_option("--out", out, "output directory: teacher.jsonl, targets.safetensors, shards/");
  cmd->add_option("--split", split, "only pairs of this split");
  cmd->add_flag("--no-cot", no_cot, "read the distribution right after the prompt (no CoT; ablation)");
  cmd->add_option("--batch", batch, "pairs per generation batch (teacher.batch)");
  cmd->add_option("--max-new-tokens", max_new, "CoT length limit (teacher.max_new_tokens)");
  cmd->add_option("--device", device, "cpu | cuda | cuda:N | auto (teacher.device)");
  cmd->add_option("--dtype", dtype, "fp32 | bf16 | fp16 (teacher.dtype)");
  add_config_options(cmd, config);

  auto* inspect = cmd->add_subcommand("inspect", "show one pair's CoT and its tags aligned under the student's tokens");
  static std::string targets_dir, inspect_id;
  inspect->add_option("--targets", targets_dir, "the teacher output directory")->required();
  inspect->add_option("id", inspect_id, "pair id")->required();
  inspect->callback([] { inspect_targets(targets_dir, inspect_id); });

  cmd->callback([cmd, inspect] {
    if (inspect->parsed()) return;
    for (auto [name, value] : {std::pair{"--model", &model}, {"--pairs", &pairs_path},
                               {"--student-tokenizer", &student_tok}, {"--out", &out}})
      if (value->empty()) fail("ellm teacher: {} is required", name);
    json cfg = config.resolve(teacher_defaults());
    if (batch > 0) cfg["teacher"]["batch"] = batch;
    if (max_new > 0) cfg["teacher"]["max_new_tokens"] = max_new;
    if (!device.empty()) cfg["teacher"]["device"] = device;
    if (!dtype.empty()) cfg["teacher"]["dtype"] = dtype;
    const json& t = cfg["teacher"];

    GradeScale grades = grade_scale_for(pairs_path);
    std::vector<Pair> pairs = read_pairs(pairs_path, split);
    ELLM_CHECK(!pairs.empty(), "{}: no pairs{}", pairs_path, split.empty() ? "" : " in split '" + split + "'");
    DistEnv env = read_dist_env();
    // Join the group first, so that a rank that cannot start fails the job now, not at the merge.
    std::unique_ptr<Distributed> dist;
    if (env.world_size > 1)
      dist = std::make_unique<Distributed>(env, c10::Device(c10::kCPU),
                                           std::chrono::seconds(cfg["dist"]["merge_timeout_s"].get<int64_t>()));

    DecoderTeacherOptions o;
    o.model_dir = model;
    o.adapter_dir = adapter;
    o.prompt_template = t["prompt_template"].get<std::string>();
    o.chat_template = t["chat_template"].get<std::string>();
    o.grades = grades;
    o.no_cot = no_cot;
    o.max_new_tokens = t["max_new_tokens"].get<int64_t>();
    o.score_batch = t["score_batch"].get<int64_t>();
    o.dtype = parse_dtype(t["dtype"].get<std::string>());
    o.device = resolve_device(t["device"].get<std::string>());
    // Ranks on one machine share its GPUs by local rank.
    if (o.device.is_cuda() && env.world_size > 1) o.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
    DecoderTeacher teacher(o);

    ShardOptions so;
    so.out_dir = out;
    so.rank = env.rank;
    so.world_size = env.world_size;
    so.batch = t["batch"].get<int64_t>();
    run_teacher_shard(teacher, pairs, grades, so);
    if (dist) dist->barrier();
    if (env.rank != 0) return;

    auto student = load_tokenizer(student_tok);
    TargetsConfig tc;
    tc.grades = grades;
    tc.student = student;
    tc.limits.max_length = cfg["targets"]["max_length"].get<int64_t>();
    tc.limits.max_query_tokens = cfg["targets"]["max_query_tokens"].get<int64_t>();
    tc.factors = AttentionFactors::from_json(cfg["targets"]["attention_factors"]);
    tc.metadata = {{"teacher", teacher.describe()},
                   {"student_tokenizer_path", std::filesystem::absolute(student_tok).string()},
                   {"pairs", pairs_path},
                   {"split", split},
                   {"no_cot", no_cot ? "true" : "false"}};
    json stats = write_teacher_outputs(out, collect_in_order(out, pairs, grades), tc);
    save_resolved_config(out, cfg);
    spdlog::info("teacher: {} pairs → {}/teacher.jsonl, {}/targets.safetensors ({} with CoT targets, {} flagged)",
                 pairs.size(), out, out, stats["with_cot"].get<int64_t>(), stats["flagged"].get<int64_t>());
    std::cout << stats.dump(2) << "\n";
  });
}

}  // namespace ellm::cli
