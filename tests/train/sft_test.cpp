// SFT of the decoder teacher: annotation reading, response-only loss, overfitting a
// tiny set, exact resume, two Gloo ranks == one process.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "../common/temp_dir.h"
#include "ellm/models/generate.h"
#include "ellm/train/sft.h"
#include "ellm/util/error.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

// Bytes are ids 0..255; ChatML specials are matched in the text. Enough to drive the
// chat template without depending on a trained vocabulary.
class ByteTokenizer : public Tokenizer {
 public:
  Encoding encode(std::string_view text, bool) const override {
    Encoding e;
    size_t i = 0;
    while (i < text.size()) {
      bool special = false;
      for (size_t s = 0; s < specials_.size(); ++s) {
        if (text.substr(i, specials_[s].size()) == specials_[s]) {
          e.ids.push_back(256 + s);
          e.offsets.emplace_back(i, i + specials_[s].size());
          i += specials_[s].size();
          special = true;
          break;
        }
      }
      if (special) continue;
      e.ids.push_back(static_cast<unsigned char>(text[i]));
      e.offsets.emplace_back(i, i + 1);
      ++i;
    }
    return e;
  }
  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const override {
    std::string s;
    for (int64_t id : ids)
      if (!(skip_special && id >= 256)) s += token_bytes(id);
    return s;
  }
  std::string token_bytes(int64_t id) const override {
    return id < 256 ? std::string(1, static_cast<char>(id)) : specials_[id - 256];
  }
  int64_t vocab_size() const override { return 256 + specials_.size(); }
  std::optional<int64_t> token_to_id(const std::string& t) const override {
    for (size_t s = 0; s < specials_.size(); ++s)
      if (specials_[s] == t) return 256 + s;
    if (t.size() == 1) return static_cast<unsigned char>(t[0]);
    return std::nullopt;
  }
  std::string id_to_token(int64_t id) const override { return token_bytes(id); }
  bool is_special(int64_t id) const override { return id >= 256; }
  std::optional<int64_t> bos_id() const override { return std::nullopt; }
  std::optional<int64_t> eos_id() const override { return 256; }
  std::optional<int64_t> pad_id() const override { return 256; }
  std::optional<int64_t> unk_id() const override { return std::nullopt; }
  std::string describe() const override { return "bytes"; }

 private:
  std::vector<std::string> specials_{"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
};

const char* kAnnotations[] = {
    R"({"id":"a1","query":"red sofa","item":{"title":"Red Linen Sofa"},"label":2,"cot":"[category] query: \"sofa\" | item: \"Sofa\" | match\n[attribute:color] query: \"red\" | item: \"Red\" | match\n","grade":"exact"})",
    R"({"id":"a2","query":"oak table","item":{"title":"Pine Desk"},"label":0,"cot":{"text":"[category] query: \"table\" | item: \"Desk\" | mismatch\n[conclusion] irrelevant\n"},"grade":0})",
    R"({"id":"a3","query":"blue lamp","item":{"title":"Green Lamp"},"label":1,"cot":["[category] query: \"lamp\" | item: \"Lamp\" | match","[attribute:color] query: \"blue\" | item: \"Green\" | mismatch"],"grade":"partial"})",
    R"({"id":"a4","query":"drill","item":{"title":"Drill Bits"},"label":0,"cot":"[category] query: \"drill\" | item: \"Drill Bits\" | mismatch\n","grade":"irrelevant","flagged":true})",
    R"({"id":"a5","query":"rug","item":{"title":"Wool Rug"},"label":2,"cot":"this is not a CoT","grade":"exact"})",
    R"({"id":"a6","query":"grey chair","item":{"title":"Gray Chair"},"label":2,"cot":"[category] query: \"chair\" | item: \"Chair\" | match\n[attribute:color] query: \"grey\" | item: \"Gray\" | match\n","grade":"exact"})",
};

std::string write_annotations(const std::string& dir) {
  std::string path = (fs::path(dir) / "annotations.jsonl").string();
  std::ofstream out(path);
  for (const char* line : kAnnotations) out << line << "\n";
  return path;
}

DecoderConfig tiny_config() {
  DecoderConfig c;
  c.vocab_size = 259;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  c.tie_word_embeddings = true;
  return c;
}

struct Fixture {
  ByteTokenizer tok;
  GradeScale grades;
  PromptTemplate prompt;
  ChatTemplate chat = ChatTemplate::load("qwen2");
  std::vector<SftExample> examples;
  Fixture(const std::string& dir, bool cot = true) {
    prompt.system = "Judge relevance. Grades: {grades}.";
    prompt.user = "Query: {query}\nProduct: {title}";
    auto records = read_sft_records(write_annotations(dir), grades, cot);
    examples = encode_sft(records, prompt, chat, tok, grades, 0);
  }
};

TrainConfig train_config(int64_t steps) {
  TrainConfig t;
  t.max_steps = steps;
  t.batch_size = 4;
  t.micro_batch_size = 2;
  t.lr = 3e-3;
  t.warmup_ratio = 0.0;
  t.min_lr_ratio = 1.0;
  t.weight_decay = 0.0;
  t.log_every = 1000;
  t.seed = 3;
  return t;
}

SftOptions options(bool lora);
SftOptions options_without_dropout() {
  SftOptions o = options(true);
  o.lora_config.dropout = 0.0;
  return o;
}

SftOptions options(bool lora) {
  SftOptions o;
  o.lora = lora;
  o.lora_config.r = 8;
  o.lora_config.alpha = 16;
  o.lora_config.dropout = 0.1;
  o.pad_id = 256;
  o.seed = 3;
  return o;
}

}  // namespace

TEST(Sft, ReadsAnnotationsSkipsFlaggedAndDropsUnparsedCots) {
  auto dir = fresh_dir("read");
  GradeScale grades;
  SftReadStats st;
  auto records = read_sft_records(write_annotations(dir), grades, true, &st);
  EXPECT_EQ(st.read, 6);
  EXPECT_EQ(st.flagged, 1);
  EXPECT_EQ(st.unparsed, 1);
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[0].target,
            "[category] query: \"sofa\" | item: \"Sofa\" | match\n[attribute:color] query: \"red\" | item: \"Red\" | "
            "match\n[conclusion] exact\n");
  EXPECT_EQ(records[1].target.substr(records[1].target.size() - 24), "[conclusion] irrelevant\n");
  auto direct = read_sft_records(write_annotations(dir), grades, false);
  ASSERT_EQ(direct.size(), 5u);  // the unparsable CoT does not matter without CoT
  EXPECT_EQ(direct[2].target, "[conclusion] partial\n");
  fs::remove_all(dir);
}

TEST(Sft, LossIsOnResponseTokensOnly) {
  auto dir = fresh_dir("mask");
  Fixture f(dir);
  ASSERT_EQ(f.examples.size(), 4u);
  const auto& ex = f.examples[0];
  // The response is the target plus <|im_end|>; units count them.
  std::string target = "[category] query: \"sofa\"";
  int64_t first = -1;
  for (size_t t = 0; t < ex.ids.size(); ++t)
    if (ex.response_mask[t]) {
      first = t;
      break;
    }
  ASSERT_GE(first, 0);
  EXPECT_EQ(f.tok.decode(std::vector<int64_t>(ex.ids.begin() + first, ex.ids.begin() + first + target.size()), false), target);
  SftTask task(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 1), f.examples, {}, options(false));
  // Loss of one example == hand-computed CE over its response tokens.
  auto l = task.loss({0});
  torch::NoGradGuard g;
  auto logits = task.model()->forward(torch::tensor(ex.ids, torch::kInt64).unsqueeze(0))[0];
  double want = 0;
  for (size_t t = 1; t < ex.ids.size(); ++t)
    if (ex.response_mask[t]) want -= torch::log_softmax(logits[t - 1], -1)[ex.ids[t]].item<double>();
  EXPECT_NEAR(l.loss_sum.item<double>(), want, 1e-3 * want);
  EXPECT_EQ(task.count_units({0}), static_cast<double>(ex.units));
  fs::remove_all(dir);
}

TEST(Sft, TinyTeacherOverfitsAndReproducesTheCot) {
  auto dir = fresh_dir("overfit");
  Fixture f(dir);
  SftTask task(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 2), f.examples, f.examples, options(false));
  double before = task.evaluate().metrics["eval_loss"];
  Distributed single;
  auto cfg = train_config(150);
  Trainer(cfg, dir, single).fit(task, false);
  double after = task.evaluate().metrics["eval_loss"];
  EXPECT_LT(after, 0.05 * before) << before << " → " << after;
  // Greedy decoding from the prompt reproduces the training CoT.
  const auto& ex = f.examples[0];
  size_t first = 0;
  while (!ex.response_mask[first]) ++first;
  GenerateOptions g;
  g.max_new_tokens = static_cast<int64_t>(ex.ids.size() - first) + 2;
  g.stop_ids = {258};
  auto out = generate(task.model(), {std::vector<int64_t>(ex.ids.begin(), ex.ids.begin() + first)}, g);
  EXPECT_EQ(f.tok.decode(out[0], false), f.tok.decode(std::vector<int64_t>(ex.ids.begin() + first, ex.ids.end() - 2), false));
  // final/ is a loadable HF model with the teacher's metadata.
  EXPECT_TRUE(fs::exists(fs::path(dir) / "final" / "config.json"));
  EXPECT_TRUE(fs::exists(fs::path(dir) / "final" / "ellm_teacher.json"));
  fs::remove_all(dir);
}

// Trains 6 steps straight, and 3 + resume from the step-2 checkpoint: the weights must be equal.
void expect_resume_exact(const SftOptions& opts, const std::string& name) {
  auto dir = fresh_dir(name);
  Fixture f(dir);
  Distributed single;
  auto cfg = train_config(6);
  cfg.save_every = 2;
  SftTask full(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 4), f.examples, {}, opts);
  Trainer(cfg, dir + "/full", single).fit(full, false);

  // Whatever the process drew before must not matter (a resumed process has drawn other things).
  torch::rand({1000});
  SftTask first(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 4), f.examples, {}, opts);
  Trainer interrupted(cfg, dir + "/split", single);
  interrupted.set_stop_after(3);
  interrupted.fit(first, false);
  SftTask second(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 4), f.examples, {}, opts);
  torch::rand({777});
  Trainer(cfg, dir + "/split", single).fit(second, true);
  auto a = full.trainable_parameters(), b = second.trainable_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  // The LoRA final dir is a merged HF model by default.
  EXPECT_FALSE(fs::exists(fs::path(dir) / "full" / "final" / "adapter_config.json"));
  auto merged = load_decoder(dir + "/full/final", torch::kFloat32, torch::kCPU);
  EXPECT_EQ(merged->config().vocab_size, 259);
  fs::remove_all(dir);
}

// With LoRA dropout the masks must be the same draws after a resume. They once were not: the
// dropout draws came from the process-wide generator, whose state depended on what the process
// had run before (here: the uninterrupted run), so the two runs differed from step 0 on. The
// trainer now reseeds every step from (seed, step, rank).
TEST(Sft, LoraResumeEqualsUninterrupted) { expect_resume_exact(options(true), "resume"); }

TEST(Sft, LoraResumeWithoutDropoutEqualsUninterrupted) {
  expect_resume_exact(options_without_dropout(), "resume-nodrop");
}

TEST(Sft, TwoGlooRanksEqualOneProcess) {
  auto dir = fresh_dir("ranks");
  Fixture f(dir);
  Distributed single;
  auto cfg = train_config(3);
  auto opt = options(true);
  opt.lora_config.dropout = 0.0;  // dropout masks differ per rank by design
  SftTask reference(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 5), f.examples, {}, opt);
  Trainer(cfg, dir + "/one", single).fit(reference, false);

  int port = find_free_port();
  std::vector<std::unique_ptr<SftTask>> tasks;
  for (int r = 0; r < 2; ++r)
    tasks.push_back(std::make_unique<SftTask>(make_decoder(tiny_config(), torch::kFloat32, torch::kCPU, 5), f.examples,
                                              std::vector<SftExample>{}, opt));
  std::vector<std::string> errors(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_port = port;
        Distributed dist(env, c10::Device(c10::kCPU), std::chrono::seconds(60));
        Trainer(cfg, dir + "/two", dist).fit(*tasks[r], false);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& t : ranks) t.join();
  if (!errors[0].empty() && errors[0].find("rendezvous") != std::string::npos) GTEST_SKIP() << errors[0];
  ASSERT_TRUE(errors[0].empty()) << errors[0];
  ASSERT_TRUE(errors[1].empty()) << errors[1];
  auto a = reference.trainable_parameters(), b = tasks[0]->trainable_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-5, 1e-6)) << a[i].first;
  fs::remove_all(dir);
}
