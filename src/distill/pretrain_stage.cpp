#include "ellm/distill/pretrain_stage.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "ellm/data/text_corpus.h"
#include "ellm/distill/distill_stage.h"
#include "ellm/distill/pretrain_task.h"
#include "ellm/io/atomic_file.h"
#include "ellm/models/student.h"
#include "ellm/util/error.h"

namespace fs = std::filesystem;

namespace ellm {

json pretrain_default_config() {
  MlmMasking mlm;
  json train = train_default_config();
  train["max_steps"] = 600;
  train["lr"] = 1e-3;
  train["batch_size"] = 64;
  train["micro_batch_size"] = 64;
  train["warmup_ratio"] = 0.1;
  train["save_every"] = 200;
  return {{"tokenizer", ""},
          {"model", student_encoder_default_config()},
          {"data", {{"split", "train"}, {"max_length", 64}, {"eval_texts", 256}, {"max_texts", 0}}},
          {"mlm", {{"mask_prob", mlm.mask_prob}, {"mask_token", mlm.mask_token}, {"random_token", mlm.random_token}}},
          {"eval", {{"batch", 64}}},
          {"train", train}};
}

TrainResult run_pretrain(const json& cfg, const PretrainPaths& paths, bool resume, Distributed& dist) {
  ELLM_CHECK(paths.pairs.empty() != paths.text.empty(), "pretrain: give exactly one corpus, --pairs FILE or --text FILE");
  ELLM_CHECK(!paths.out.empty(), "pretrain: --out is required");
  const std::string tok_path = cfg.at("tokenizer");
  ELLM_CHECK(!tok_path.empty(), "pretrain: no student tokenizer: set \"tokenizer\" in the config or pass --tokenizer "
                                "(a SentencePiece .model from `ellm tokenizer train`, or a BERT vocab.txt)");
  std::shared_ptr<const Tokenizer> tok = load_tokenizer(tok_path);
  const MlmVocab vocab = mlm_vocab(*tok);

  // ---- geometry: the students' BERT fields, vocabulary sized to the tokenizer ----
  json bj = cfg.at("model");
  if (bj.at("vocab_size").get<int64_t>() == 0) bj["vocab_size"] = vocab.min_model_vocab;
  bj["pad_token_id"] = student_special_ids(*tok).pad;
  BertConfig bert = BertConfig::from_json(bj, "config model");

  // ---- corpus: distinct texts, a seeded held-out slice for evaluation ----
  const json& data = cfg.at("data");
  std::vector<std::string> texts;
  if (!paths.pairs.empty()) {
    const std::string split = data.at("split");
    texts = corpus_from_pairs(read_pairs(paths.pairs, split));
    ELLM_CHECK(!texts.empty(), "{}: no texts (split '{}')", paths.pairs, split);
  } else {
    texts = corpus_from_text_file(paths.text);
    ELLM_CHECK(!texts.empty(), "{}: no texts (every line is empty)", paths.text);
  }
  TrainConfig tc = train_config_from_json(cfg.at("train"));
  const int64_t n = static_cast<int64_t>(texts.size());
  const int64_t n_eval = std::min<int64_t>(data.at("eval_texts").get<int64_t>(), n / 10);
  std::vector<std::string> train, eval;
  {
    std::vector<int64_t> perm = epoch_permutation(n, tc.seed, -1);  // −1: not a training epoch's order
    std::vector<uint8_t> held(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n_eval; ++i) held[perm[i]] = 1;
    for (int64_t i = 0; i < n; ++i) (held[i] ? eval : train).push_back(std::move(texts[i]));
  }
  const int64_t max_texts = data.at("max_texts");
  if (max_texts > 0 && static_cast<int64_t>(train.size()) > max_texts) train.resize(max_texts);

  MlmMasking masking;
  masking.mask_prob = cfg.at("mlm").at("mask_prob");
  masking.mask_token = cfg.at("mlm").at("mask_token");
  masking.random_token = cfg.at("mlm").at("random_token");

  BertForMaskedLM model(bert);
  model->init_weights(tc.seed);
  PretrainTask task(model, tok, tokenizer_source_path(*tok), data.at("max_length"), std::move(train), std::move(eval),
                    masking, tc.seed, cfg.at("eval").at("batch"));
  if (dist.is_main()) {
    ensure_dir(paths.out);
    write_file_atomic((fs::path(paths.out) / "resolved-config.json").string(), cfg.dump(2) + "\n");
  }
  int64_t params = 0;
  for (auto& [name, p] : task.trainable_parameters()) params += p.numel();
  spdlog::info("pretrain: BERT d={} L={} vocab {} ({} parameters), {} training texts, {} held out; [MASK] = id {}{}",
               bert.hidden_size, bert.num_hidden_layers, bert.vocab_size, params, task.num_examples(), n_eval,
               vocab.mask_id, vocab.added_mask ? " (added)" : "");
  Trainer trainer(tc, paths.out, dist);
  return trainer.fit(task, resume);
}

}  // namespace ellm
