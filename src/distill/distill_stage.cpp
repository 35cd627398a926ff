#include "ellm/distill/distill_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "ellm/distill/distill_task.h"
#include "ellm/io/atomic_file.h"
#include "ellm/io/checkpoint.h"
#include "ellm/util/autocast.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

json student_encoder_default_config() {
  BertConfig b;
  return {{"vocab_size", 0},
          {"hidden_size", 128},
          {"num_hidden_layers", 2},
          {"num_attention_heads", 2},
          {"intermediate_size", 512},
          {"hidden_act", b.hidden_act},
          {"hidden_dropout_prob", b.hidden_dropout_prob},
          {"attention_probs_dropout_prob", b.attention_probs_dropout_prob},
          {"max_position_embeddings", 128},
          {"type_vocab_size", b.type_vocab_size},
          {"initializer_range", b.initializer_range},
          {"layer_norm_eps", b.layer_norm_eps}};
}

json distill_default_config() {
  InputLimits lim;
  json model = student_encoder_default_config();
  model["shared_towers"] = true;
  model["projection_dim"] = 128;
  json train = train_default_config();
  train["lr"] = 5e-4;
  train["batch_size"] = 32;
  train["micro_batch_size"] = 32;
  train["epochs"] = 2.0;
  train["warmup_ratio"] = 0.1;
  train["early_stopping_patience"] = 2;
  return {{"student", "cross-encoder"},
          {"tokenizer", ""},
          {"init_from", ""},
          {"model", model},
          {"inputs",
           {{"max_length", lim.max_length},
            {"max_query_length", lim.max_query_length},
            {"max_item_length", lim.max_item_length},
            {"max_query_tokens", lim.max_query_tokens}}},
          {"loss", DistillLossConfig::defaults()},
          {"data", {{"train_split", "train"}, {"dev_split", "dev"}, {"max_train", 0}, {"max_dev", 0}}},
          {"eval", {{"batch", 64}}},
          {"train", train}};
}

namespace {

// An encoder pre-trained by `ellm pretrain` names the tokenizer it learnt its
// embeddings with; a student reading other ids would start from scrambled rows.
void check_init_tokenizer(const std::string& init_from, const Tokenizer& tok) {
  std::string cfg_path = (fs::path(init_from) / "config.json").string();
  json j = read_json_file(cfg_path);
  if (!j.contains("ellm_pretrain") || !j["ellm_pretrain"].contains("tokenizer")) return;
  fs::path theirs = fs::path(init_from) / j["ellm_pretrain"]["tokenizer"].get<std::string>();
  std::string ours = tokenizer_source_path(tok);
  ELLM_CHECK(fs::exists(theirs), "{}: ellm_pretrain.tokenizer names {}, which is missing", cfg_path, theirs.string());
  ELLM_CHECK(read_file(theirs.string()) == read_file(ours),
             "{}: the encoder was pre-trained with the tokenizer {} but the student's tokenizer is {} (a different "
             "file): drop \"tokenizer\" to use the pre-trained one",
             cfg_path, theirs.string(), ours);
}

}  // namespace

TrainResult run_distill(const json& cfg, const DistillPaths& paths, bool resume, Distributed& dist) {
  ELLM_CHECK(!paths.pairs.empty(), "distill: --pairs is required");
  ELLM_CHECK(!paths.out.empty(), "distill: --out is required");
  const std::string init_from = cfg.at("init_from");
  std::string tok_path = cfg.at("tokenizer");
  // A pre-trained directory (`ellm pretrain`, or a HF BERT with its vocab.txt) holds its tokenizer.
  if (tok_path.empty() && !init_from.empty()) tok_path = init_from;
  ELLM_CHECK(!tok_path.empty(), "distill: no student tokenizer: set \"tokenizer\" in the config or pass --tokenizer "
                                "(a SentencePiece .model from `ellm tokenizer train`, or a BERT vocab.txt)");
  std::shared_ptr<const Tokenizer> tok = load_tokenizer(tok_path);
  if (!init_from.empty()) check_init_tokenizer(init_from, *tok);

  StudentConfig sc;
  std::string kind = cfg.at("student");
  ELLM_CHECK(kind == "cross-encoder" || kind == "two-tower", "student '{}' is not cross-encoder or two-tower", kind);
  sc.kind = kind == "cross-encoder" ? StudentKind::cross_encoder : StudentKind::two_tower;
  json m = cfg.at("model");
  if (!init_from.empty()) {
    std::string p = (fs::path(init_from) / "config.json").string();
    sc.bert = BertConfig::from_json(read_json_file(p), p);
  } else {
    json bj = m;
    if (bj["vocab_size"].get<int64_t>() == 0) bj["vocab_size"] = tok->vocab_size();
    sc.bert = BertConfig::from_json(bj, "config model");
  }
  sc.shared_towers = m.at("shared_towers");
  sc.projection_dim = m.at("projection_dim");
  sc.limits.max_length = cfg.at("inputs").at("max_length");
  sc.limits.max_query_length = cfg.at("inputs").at("max_query_length");
  sc.limits.max_item_length = cfg.at("inputs").at("max_item_length");
  sc.limits.max_query_tokens = cfg.at("inputs").at("max_query_tokens");
  ELLM_CHECK(std::max({sc.limits.max_length, sc.limits.max_query_length, sc.limits.max_item_length}) <=
                 sc.bert.max_position_embeddings,
             "inputs.* lengths exceed model.max_position_embeddings {}", sc.bert.max_position_embeddings);
  sc.grades = grade_scale_for(paths.pairs);
  sc.tokenizer_file = fs::path(tokenizer_source_path(*tok)).filename().string();

  TrainConfig tc = train_config_from_json(cfg.at("train"));
  Student student(sc, tok, tc.seed);
  // One precision for the student throughout the stage: autocast in training steps (the
  // Trainer), the same dtype when it scores the dev pairs.
  student.set_inference_dtype(parse_training_precision(tc.precision, "train.precision"));
  if (!init_from.empty()) {
    CheckpointReader reader(init_from);
    if (sc.kind == StudentKind::cross_encoder) {
      load_bert_encoder(student.cross()->bert(), reader, "auto");
    } else {
      load_bert_encoder(student.two_tower()->tower(0), reader, "auto");
      if (!sc.shared_towers) load_bert_encoder(student.two_tower()->tower(1), reader, "auto");
    }
    spdlog::info("initialised the encoder from {}", init_from);
  }

  const json& data = cfg.at("data");
  const std::string train_split = data.at("train_split").get<std::string>(), dev_split = data.at("dev_split").get<std::string>();
  std::vector<Pair> train = read_pairs(paths.pairs, train_split);
  std::vector<Pair> dev = read_pairs(paths.dev.empty() ? paths.pairs : paths.dev, dev_split);
  ELLM_CHECK(!train.empty(), "{}: no pairs of split '{}'", paths.pairs, train_split);
  auto cap = [](std::vector<Pair>& v, int64_t n) {
    if (n > 0 && static_cast<int64_t>(v.size()) > n) v.resize(n);
  };
  cap(train, data.at("max_train"));
  cap(dev, data.at("max_dev"));
  if (dev.empty()) spdlog::warn("no dev pairs: no evaluation, no early stopping, no best/ model");

  std::unique_ptr<TeacherTargets> teacher;
  if (!paths.teacher.empty()) teacher = std::make_unique<TeacherTargets>(read_teacher_targets(paths.teacher, sc.grades.size()));

  DistillLossConfig loss = DistillLossConfig::from_json(cfg.at("loss"));
  DistillTask task(student, tokenizer_source_path(*tok), std::move(train), std::move(dev), teacher.get(), loss,
                   cfg.at("eval").at("batch"));
  // Evaluate once per epoch unless told otherwise.
  if (tc.eval_every == 0) tc.eval_every = std::max<int64_t>(1, task.num_examples() / tc.batch_size);
  if (dist.is_main()) {
    ensure_dir(paths.out);
    write_file_atomic((fs::path(paths.out) / "resolved-config.json").string(), cfg.dump(2) + "\n");
  }
  spdlog::info("distill: {} student ({} parameters), {} training pairs", kind,
               [&] {
                 int64_t n = 0;
                 for (auto& [name, p] : student.named_weights()) n += p.numel();
                 return n;
               }(),
               task.num_examples());
  Trainer trainer(tc, paths.out, dist);
  return trainer.fit(task, resume);
}

}  // namespace ellm
