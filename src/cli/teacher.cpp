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
#include "ellm/teacher/record.h"
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


// The student-target settings every teacher output shares (defaults + --config/--set).
TargetsConfig targets_config(const json& cfg, const GradeScale& grades, const std::string& student_tok) {
  TargetsConfig tc;
  tc.grades = grades;
  tc.student = load_tokenizer(student_tok);
  tc.limits.max_length = cfg["targets"]["max_length"].get<int64_t>();
  tc.limits.max_query_tokens = cfg["targets"]["max_query_tokens"].get<int64_t>();
  tc.factors = AttentionFactors::from_json(cfg["targets"]["attention_factors"]);
  tc.metadata = {{"student_tokenizer_path", std::filesystem::absolute(student_tok).string()}};
  return tc;
}

// `ellm teacher from-annotations`: the same outputs with the CoT taken from annotations.jsonl
// instead of generated — the rule-BIO control of DESIGN §6 (what the teacher adds over the
// annotator's own CoT). The distribution is the annotation's grade (one-hot); pairs without
// an annotation get a uniform distribution and no CoT targets.
void teacher_from_annotations(const std::string& annotations, const std::string& pairs_path,
                              const std::string& student_tok, const std::string& out, const json& cfg) {
  GradeScale grades = grade_scale_for(pairs_path);
  std::vector<Pair> pairs = read_pairs(pairs_path);
  std::map<std::string, std::pair<std::string, int>> by_id;  // id → (cot text, grade)
  for_each_jsonl(annotations, [&](const json& j, const JsonlReader& r) {
    if (j.value("flagged", false)) return;
    if (!j.contains("id") || !j["id"].is_string()) fail("{}: missing string field 'id'", r.where());
    if (!j.contains("cot")) fail("{}: missing field 'cot'", r.where());
    const json& c = j["cot"];
    std::string text = c.is_string() ? c.get<std::string>() : c.value("text", "");
    if (text.empty()) fail("{}: 'cot' has no text", r.where());
    if (!j.contains("grade") || !j["grade"].is_number_integer()) fail("{}: missing integer field 'grade'", r.where());
    int g = j["grade"].get<int>();
    if (g < 0 || g >= grades.size()) fail("{}: grade {} outside the scale ({} grades)", r.where(), g, grades.size());
    by_id[j["id"].get<std::string>()] = {text, g};
  });
  std::vector<TeacherRecord> records;
  records.reserve(pairs.size());
  int64_t annotated = 0;
  for (const auto& p : pairs) {
    auto it = by_id.find(p.id);
    if (it == by_id.end()) {
      records.push_back(make_teacher_record(p, nullptr, std::vector<double>(grades.size(), 1.0 / grades.size()), grades));
      continue;
    }
    ++annotated;
    std::vector<double> probs(grades.size(), 0.0);
    probs[it->second.second] = 1.0;
    records.push_back(make_teacher_record(p, &it->second.first, probs, grades));
  }
  TargetsConfig tc = targets_config(cfg, grades, student_tok);
  tc.metadata["teacher"] = "annotations:" + annotations;
  tc.metadata["pairs"] = pairs_path;
  json stats = write_teacher_outputs(out, records, tc);
  save_resolved_config(out, cfg);
  spdlog::info("teacher from-annotations: {} pairs, {} with an annotation → {}", pairs.size(), annotated, out);
  std::cout << stats.dump(2) << "\n";
}

// `ellm teacher merge`: teacher outputs of several runs (e.g. the K out-of-fold teachers,
// each over its held-out fold) joined into one, in the order of --pairs; every pair must be
// labelled exactly once. Targets are rebuilt from the records with the shards' settings.
void merge_teacher_outputs(const std::string& pairs_path, const std::vector<std::string>& dirs, const std::string& out,
                           const json& cfg) {
  GradeScale grades = grade_scale_for(pairs_path);
  std::vector<Pair> pairs = read_pairs(pairs_path);
  std::map<std::string, std::pair<TeacherRecord, std::string>> by_id;
  std::string student_tok;
  std::vector<std::string> teachers;
  for (const auto& dir : dirs) {
    SafetensorsFile st(dir + "/targets.safetensors");
    std::string tok = tokenizer_path_from_metadata(st.metadata());
    if (student_tok.empty()) student_tok = tok;
    if (tok != student_tok) fail("{}: student tokenizer {} differs from the first shard's {}", dir, tok, student_tok);
    if (st.metadata().count("teacher")) teachers.push_back(st.metadata().at("teacher"));
    for_each_jsonl(dir + "/teacher.jsonl", [&](const json& j, const JsonlReader& r) {
      TeacherRecord rec = teacher_record_from_json(j, r.where(), grades);
      auto [it, fresh] = by_id.emplace(rec.id, std::pair{rec, r.where()});
      if (!fresh) fail("{}: pair '{}' already labelled at {}", r.where(), rec.id, it->second.second);
    });
  }
  std::vector<TeacherRecord> records;
  for (const auto& p : pairs) {
    auto it = by_id.find(p.id);
    if (it == by_id.end()) fail("ellm teacher merge: pair '{}' of {} is in none of the inputs", p.id, pairs_path);
    records.push_back(it->second.first);
  }
  TargetsConfig tc = targets_config(cfg, grades, student_tok);
  tc.metadata["teacher"] = json(teachers).dump();
  tc.metadata["pairs"] = pairs_path;
  json stats = write_teacher_outputs(out, records, tc);
  spdlog::info("teacher merge: {} pairs from {} inputs → {}", records.size(), dirs.size(), out);
  std::cout << stats.dump(2) << "\n";
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

  auto* from_ann = cmd->add_subcommand("from-annotations",
                                       "teacher outputs from annotations.jsonl CoTs (the rule-BIO control)");
  static std::string ann_path;
  from_ann->add_option("--annotations", ann_path, "annotations.jsonl (ellm annotate)")->required();
  from_ann->add_option("--pairs", pairs_path, "pairs.jsonl")->required();
  from_ann->add_option("--student-tokenizer", student_tok, "the student's tokenizer")->required();
  from_ann->add_option("--out", out, "output directory")->required();
  add_config_options(from_ann, config);
  from_ann->callback([] { teacher_from_annotations(ann_path, pairs_path, student_tok, out, config.resolve(teacher_defaults())); });

  auto* merge = cmd->add_subcommand("merge", "join teacher output directories (e.g. out-of-fold teachers) in pairs order");
  static std::vector<std::string> merge_dirs;
  merge->add_option("--pairs", pairs_path, "pairs.jsonl that fixes the order; each pair labelled exactly once")->required();
  merge->add_option("--out", out, "output directory")->required();
  merge->add_option("dirs", merge_dirs, "teacher output directories")->required();
  add_config_options(merge, config);
  merge->callback([] { merge_teacher_outputs(pairs_path, merge_dirs, out, config.resolve(teacher_defaults())); });

  cmd->callback([cmd, inspect, from_ann, merge] {
    if (inspect->parsed() || from_ann->parsed() || merge->parsed()) return;
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
