// `ellm pretrain`: BERT's masking recipe (statistics, specials, determinism),
// the corpus, the MLM task on the shared Trainer (the loss falls, resume is
// exact), and the stage end to end into `ellm distill --set init_from=…`.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "../common/tiny_tokenizer.h"
#include "ellm/data/mlm_masking.h"
#include "ellm/data/text_corpus.h"
#include "ellm/distill/distill_stage.h"
#include "ellm/distill/pretrain_stage.h"
#include "ellm/distill/pretrain_task.h"
#include "ellm/io/checkpoint.h"
#include "ellm/io/jsonl.h"
#include "ellm/models/student.h"
#include "ellm/util/config.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kMlmWords = {"grey", "red", "blue", "sofa", "chair", "table", "lamp", "rug",
                                         "oak",  "linen", "velvet", "with", "arms", "for", "kids", "outdoor"};

// 8 fixed phrases, repeated: every masked word is predictable from its context.
std::vector<std::string> phrase_corpus(int repeats) {
  const std::vector<std::string> phrases = {"grey linen sofa with arms", "red velvet chair for kids",
                                            "blue oak table outdoor",    "grey rug for kids",
                                            "oak lamp with linen",       "velvet sofa outdoor red",
                                            "blue chair with arms",      "linen table lamp grey"};
  std::vector<std::string> out;
  for (int r = 0; r < repeats; ++r) out.insert(out.end(), phrases.begin(), phrases.end());
  return out;
}

BertConfig tiny_bert(int64_t vocab, double dropout) {
  BertConfig c;
  c.vocab_size = vocab;
  c.hidden_size = 32;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = 16;
  c.hidden_dropout_prob = c.attention_probs_dropout_prob = dropout;
  return c;
}

TrainConfig tiny_train(int64_t steps) {
  TrainConfig c = train_config_from_json(train_default_config());
  c.max_steps = steps;
  c.batch_size = 16;
  c.micro_batch_size = 8;
  c.lr = 3e-3;
  c.warmup_ratio = 0.05;
  c.log_every = 10;
  c.seed = 3;
  return c;
}

std::unique_ptr<PretrainTask> tiny_task(double dropout, std::vector<std::string> texts, uint64_t seed = 3) {
  auto tok = std::make_shared<test_support::TinyTokenizer>(kMlmWords);
  MlmVocab v = mlm_vocab(*tok);
  BertForMaskedLM model(tiny_bert(v.min_model_vocab, dropout));
  model->init_weights(seed);
  return std::make_unique<PretrainTask>(model, tok, "", 12, std::move(texts), std::vector<std::string>{}, MlmMasking{},
                                        seed, 8);
}

}  // namespace

// ---- masking -----------------------------------------------------------------

TEST(MlmMasking, BertRecipeStatisticsOnALargeSample) {
  const int64_t T = 100, mask_id = 5000;
  std::vector<int64_t> pool;
  for (int64_t i = 10; i < 2010; ++i) pool.push_back(i);
  std::vector<int64_t> ids(T);
  std::vector<uint8_t> maskable(T, 1);
  for (int64_t t = 0; t < T; ++t) ids[t] = 10 + (t * 37) % 2000;
  for (int64_t t : {0, 41, 99}) ids[t] = 2, maskable[t] = 0;  // [CLS], a special inside the text, [SEP]
  int64_t candidates = 0, selected = 0, masked = 0, random = 0, unchanged = 0;
  for (int64_t row = 0; row < 3000; ++row) {
    MaskedRow r = mask_row(ids, maskable, mask_id, pool, MlmMasking{}, mlm_row_seed(11, row / 100, row % 100));
    ASSERT_EQ(r.ids.size(), ids.size());
    ASSERT_EQ(r.positions.size(), r.targets.size());
    candidates += T - 3;
    selected += static_cast<int64_t>(r.positions.size());
    size_t k = 0;
    for (int64_t t = 0; t < T; ++t) {
      bool is_selected = k < r.positions.size() && r.positions[k] == t;
      if (!is_selected) {
        ASSERT_EQ(r.ids[t], ids[t]) << "an unselected token changed at " << t;
        continue;
      }
      ASSERT_TRUE(maskable[t]) << "special token selected at " << t;
      ASSERT_EQ(r.targets[k], ids[t]);
      ++k;
      if (r.ids[t] == mask_id) ++masked;
      else if (r.ids[t] == ids[t]) ++unchanged;  // (a random draw equal to the original: 1 in 2000)
      else {
        ++random;
        ASSERT_TRUE(r.ids[t] >= 10 && r.ids[t] < 2010) << "random replacement outside the pool";
      }
    }
  }
  // ~291k candidates, ~44k selected: binomial std ≈ 0.0007 and ≈ 0.002.
  const double f = static_cast<double>(selected) / candidates;
  EXPECT_NEAR(f, 0.15, 0.005);
  EXPECT_NEAR(static_cast<double>(masked) / selected, 0.8, 0.01);
  EXPECT_NEAR(static_cast<double>(random) / selected, 0.1, 0.01);
  EXPECT_NEAR(static_cast<double>(unchanged) / selected, 0.1, 0.01);
}

TEST(MlmMasking, DeterministicGivenTheSeed) {
  std::vector<int64_t> ids = {2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 3};
  std::vector<uint8_t> maskable(ids.size(), 1);
  maskable.front() = maskable.back() = 0;
  std::vector<int64_t> pool = {10, 11, 12, 13, 14};
  MlmMasking cfg;
  cfg.mask_prob = 0.5;  // enough selections for a difference to show
  MaskedRow a = mask_row(ids, maskable, 99, pool, cfg, 42), b = mask_row(ids, maskable, 99, pool, cfg, 42);
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_EQ(a.positions, b.positions);
  EXPECT_EQ(a.targets, b.targets);
  MaskedRow c = mask_row(ids, maskable, 99, pool, cfg, 43);
  EXPECT_NE(a.positions, c.positions);
  // Row seeds differ by step and by example, and are stable.
  EXPECT_NE(mlm_row_seed(0, 1, 2), mlm_row_seed(0, 2, 1));
  EXPECT_NE(mlm_row_seed(0, 1, 2), mlm_row_seed(1, 1, 2));
  EXPECT_EQ(mlm_row_seed(7, 5, 9), mlm_row_seed(7, 5, 9));
  cfg.mask_token = 0.95;  // + random 0.1 > 1
  EXPECT_THROW(cfg.validate(), Error);
}

TEST(MlmMasking, VocabAddsAMaskIdWhenTheTokenizerHasNone) {
  test_support::TinyTokenizer plain(kMlmWords);
  MlmVocab v = mlm_vocab(plain);
  EXPECT_TRUE(v.added_mask);
  EXPECT_EQ(v.mask_id, plain.vocab_size());
  EXPECT_EQ(v.min_model_vocab, plain.vocab_size() + 1);
  // [PAD] [CLS] [SEP] are never random replacements; [UNK] is ordinary text for this tokenizer.
  EXPECT_EQ(v.random_ids.size(), kMlmWords.size() + 1);
  for (int64_t id : v.random_ids) EXPECT_FALSE(id == 0 || id == 2 || id == 3) << id;

  auto words = kMlmWords;
  words.push_back("[MASK]");
  test_support::TinyTokenizer with_mask(words);
  MlmVocab w = mlm_vocab(with_mask);
  EXPECT_FALSE(w.added_mask);
  EXPECT_EQ(w.mask_id, *with_mask.token_to_id("[MASK]"));
  EXPECT_EQ(w.min_model_vocab, with_mask.vocab_size());
  for (int64_t id : w.random_ids) EXPECT_NE(id, w.mask_id);
}

TEST(MlmCorpus, PairsGiveDistinctQueriesAndItemTextsInOrder) {
  std::vector<Pair> ps(3);
  ps[0].query = "grey sofa";
  ps[0].item.title = "Sofa";
  ps[0].item.attributes = {{"color", "gray"}};
  ps[1].query = "grey sofa";  // same query, same item: nothing new
  ps[1].item = ps[0].item;
  ps[2].query = " oak table ";
  ps[2].item.title = "grey sofa";  // an item text equal to a query: once
  EXPECT_EQ(corpus_from_pairs(ps), (std::vector<std::string>{"grey sofa", "Sofa | color: gray", "oak table"}));

  std::string dir = fresh_dir("corpus");
  std::ofstream(dir + "/c.txt") << "oak table\n\n  grey sofa \r\noak table\nlamp";
  EXPECT_EQ(corpus_from_text_file(dir + "/c.txt"), (std::vector<std::string>{"oak table", "grey sofa", "lamp"}));
  std::ofstream(dir + "/bad.txt") << "fine\n\xff\xfe\n";
  try {
    corpus_from_text_file(dir + "/bad.txt");
    FAIL() << "invalid UTF-8 must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
}

// ---- the task on the Trainer -------------------------------------------------------

TEST(PretrainTask, SpecialsAreNeverMaskedAndUnitsArePredictedTokens) {
  auto task = tiny_task(0.0, phrase_corpus(1));
  int64_t selected = 0, candidates = 0;
  for (int64_t step = 0; step < 50; ++step)
    for (int64_t e = 0; e < task->num_examples(); ++e) {
      MaskedRow r = task->masked(e, step);
      for (int64_t p : r.positions) {
        EXPECT_NE(p, 0);                                        // [CLS]
        EXPECT_NE(p, static_cast<int64_t>(r.ids.size()) - 1);  // [SEP]
      }
      selected += static_cast<int64_t>(r.positions.size());
      candidates += static_cast<int64_t>(r.ids.size()) - 2;
    }
  EXPECT_NEAR(static_cast<double>(selected) / candidates, 0.15, 0.03);
  task->begin_step(4);
  EXPECT_EQ(task->count_units({0, 1, 2}), static_cast<double>(task->masked(0, 4).positions.size() +
                                                              task->masked(1, 4).positions.size() +
                                                              task->masked(2, 4).positions.size()));
}

TEST(PretrainTask, LossFallsWellBelowLnVocabOnARepeatedCorpus) {
  auto task = tiny_task(0.0, phrase_corpus(8));
  std::string dir = fresh_dir("falls");
  Distributed single;
  TrainResult r = Trainer(tiny_train(300), dir, single).fit(*task, false);
  auto metrics = read_jsonl(dir + "/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  const double ln_v = std::log(static_cast<double>(task->vocab().min_model_vocab));
  const double first = metrics.front()["loss"], last = metrics.back()["loss"];
  EXPECT_GT(first, 0.8 * ln_v);  // starts near chance
  EXPECT_LT(last, 0.35 * ln_v) << "first window " << first << ", last " << last << ", ln V " << ln_v;
  EXPECT_TRUE(metrics.front().contains("loss_mlm"));
  EXPECT_EQ(r.steps, 300);
}

TEST(PretrainTask, ResumeReachesExactlyTheUninterruptedWeights) {
  TrainConfig c = tiny_train(12);
  c.save_every = 4;
  Distributed single;
  auto full = tiny_task(0.1, phrase_corpus(4));  // with dropout (the Trainer reseeds it per step)
  Trainer(c, fresh_dir("full"), single).fit(*full, false);

  std::string dir = fresh_dir("resumed");
  auto first = tiny_task(0.1, phrase_corpus(4));
  Trainer interrupted(c, dir, single);
  interrupted.set_stop_after(6);  // dies after step 6; the last checkpoint is step 4
  interrupted.fit(*first, false);
  ASSERT_EQ(Trainer::latest_checkpoint(dir), dir + "/checkpoint-4");
  auto second = tiny_task(0.1, phrase_corpus(4));
  {  // other weights: everything must come from the checkpoint
    torch::NoGradGuard g;
    for (auto& [name, p] : second->trainable_parameters()) p.normal_();
  }
  Trainer(c, dir, single).fit(*second, true);
  auto a = full->trainable_parameters(), b = second->trainable_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first << " differs by "
                                                        << (a[i].second - b[i].second).abs().max().item<double>();
}

// ---- the stage, into distill -----------------------------------------------------

namespace {

void write_stage_data(const std::string& dir) {
  std::ofstream v(dir + "/vocab.txt");
  for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "grey", "red", "blue", "sofa", "chair", "table",
                        "lamp", "rug", "|"})
    v << w << "\n";
  v.close();
  std::vector<Pair> pairs;
  const char* products[] = {"sofa", "chair", "table", "lamp", "rug"};
  const char* colors[] = {"grey", "red", "blue"};
  for (int i = 0; i < 48; ++i) {
    Pair p;
    int a = i % 5, b = (i * 3 + i / 7) % 5;
    p.id = "p" + std::to_string(i);
    p.query_id = "q" + std::to_string(i % 12);
    p.query = std::string(colors[i % 3]) + " " + products[a];
    p.item.id = "item" + std::to_string(i % 20);
    p.item.title = std::string(colors[(i + 1) % 3]) + " " + products[b] + " " + products[a];
    p.label = a == b ? 2 : 0;
    p.split = i < 32 ? "train" : "dev";
    pairs.push_back(p);
  }
  write_pairs(dir + "/pairs.jsonl", pairs);
}

std::vector<std::string> tiny_overrides() {
  return {"model.hidden_size=16", "model.num_hidden_layers=1", "model.num_attention_heads=2",
          "model.intermediate_size=32", "model.max_position_embeddings=64"};
}

}  // namespace

TEST(PretrainStage, WritesAnHfDirectoryThatDistillStartsFrom) {
  std::string dir = fresh_dir("stage");
  write_stage_data(dir);
  auto sets = tiny_overrides();
  for (const char* s : {"train.max_steps=6", "train.batch_size=8", "train.micro_batch_size=8", "train.save_every=0",
                        "data.max_length=16", "data.eval_texts=4"})
    sets.push_back(s);
  sets.push_back("tokenizer=" + dir + "/vocab.txt");
  json cfg = resolve_config(pretrain_default_config(), "", sets);
  Distributed single;
  TrainResult r = run_pretrain(cfg, {dir + "/pairs.jsonl", "", dir + "/out"}, false, single);
  EXPECT_EQ(r.steps, 6);
  const std::string final_dir = dir + "/out/final";
  json mc = read_json_file(final_dir + "/config.json");
  EXPECT_EQ(mc["architectures"][0], "BertForMaskedLM");
  EXPECT_EQ(mc["vocab_size"], 14);                 // vocab.txt has [MASK]: nothing added
  EXPECT_EQ(mc["ellm_pretrain"]["mask_token_id"], 4);
  EXPECT_EQ(mc["ellm_pretrain"]["tokenizer"], "vocab.txt");
  EXPECT_TRUE(fs::exists(final_dir + "/vocab.txt"));
  EXPECT_TRUE(fs::exists(dir + "/out/best/eval.json"));  // evaluated on the held-out texts
  EXPECT_TRUE(fs::exists(dir + "/out/resolved-config.json"));

  // distill from it: no tokenizer given (the directory's is used), geometry from its config.json.
  json dcfg = resolve_config(distill_default_config(), "",
                             {"init_from=" + final_dir, "train.max_steps=1", "train.lr=1e-30", "train.batch_size=8",
                              "train.micro_batch_size=8", "train.weight_decay=0", "inputs.max_length=16"});
  run_distill(dcfg, {dir + "/pairs.jsonl", "", "", dir + "/student"}, false, single);
  CheckpointReader pre(final_dir), student(dir + "/student/final");
  int compared = 0;
  for (const auto& name : pre.names()) {
    if (name.rfind("bert.", 0) != 0) continue;
    ASSERT_TRUE(student.contains(name)) << name;
    EXPECT_TRUE(torch::allclose(pre.view(name), student.view(name), 0, 1e-20)) << name;
    ++compared;
  }
  EXPECT_EQ(compared, 5 + 16);

  // A student tokenizer other than the one the encoder learnt is refused.
  {
    std::ofstream v(dir + "/other-vocab.txt");
    for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "sofa", "grey"}) v << w << "\n";
  }
  dcfg["tokenizer"] = dir + "/other-vocab.txt";
  try {
    run_distill(dcfg, {dir + "/pairs.jsonl", "", "", dir + "/student2"}, false, single);
    FAIL() << "a different tokenizer must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("pre-trained with the tokenizer"), std::string::npos) << e.what();
  }
}

TEST(PretrainStage, TextFileCorpusAndExactlyOneSource) {
  std::string dir = fresh_dir("text");
  write_stage_data(dir);
  {
    std::ofstream t(dir + "/corpus.txt");
    for (int i = 0; i < 40; ++i) t << (i % 2 ? "grey sofa " : "red lamp ") << (i % 5 ? "table" : "rug") << " " << i % 7 << "\n";
  }
  auto sets = tiny_overrides();
  for (const char* s : {"train.max_steps=2", "train.batch_size=4", "train.micro_batch_size=4", "data.max_length=8",
                        "data.eval_texts=0"})
    sets.push_back(s);
  sets.push_back("tokenizer=" + dir + "/vocab.txt");
  json cfg = resolve_config(pretrain_default_config(), "", sets);
  Distributed single;
  EXPECT_EQ(run_pretrain(cfg, {"", dir + "/corpus.txt", dir + "/out"}, false, single).steps, 2);
  EXPECT_TRUE(fs::exists(dir + "/out/final/model.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/out/best"));  // no held-out texts, no evaluation
  EXPECT_THROW(run_pretrain(cfg, {dir + "/pairs.jsonl", dir + "/corpus.txt", dir + "/out2"}, false, single), Error);
  EXPECT_THROW(run_pretrain(cfg, {"", "", dir + "/out3"}, false, single), Error);
}
