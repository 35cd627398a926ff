// End to end on a tiny decoder trained in the test: it overfits four pairs' CoTs; the teacher
// then regenerates them, puts most mass on the trained grades, and writes targets of the right
// shapes. Also the --no-cot path, cot_body, and /v1/relevance + chat through the real backend.
#include "ellm/teacher/decoder_teacher.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <filesystem>

#include "ellm/io/jsonl.h"
#include "ellm/io/safetensors.h"
#include "ellm/serve/server.h"
#include "ellm/teacher/targets_writer.h"
#include "ellm/text/chat_template.h"
#include "ellm/train/adamw.h"
#include "fake_tokenizer.h"

using namespace ellm;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  GradeScale grades;
  PromptTemplate prompt;
  ChatTemplate chat = ChatTemplate::load("qwen2");
  std::shared_ptr<test::FakeTokenizer> tok;
  std::vector<Pair> pairs;
  std::vector<std::string> cots;
  Decoder model{nullptr};

  Fixture() {
    prompt = prompt_template_from_json(
        {{"system", "Judge relevance. Grades: {grades}"}, {"user", "query: {query}\nitem: {item_text}"}}, "test", grades);
    tok = std::make_shared<test::FakeTokenizer>(100, std::vector<std::string>{"<|im_start|>", "<|im_end|>", "<|endoftext|>"});
    const char* q[] = {"grey sofa", "oak table", "red drill", "steel sink"};
    const char* t[] = {"Harbor Gray Sofa", "Pine Table", "Blue Drill", "Steel Kitchen Sink"};
    const char* g[] = {"exact", "partial", "partial", "exact"};
    const char* steps[] = {"[category] query: \"sofa\" | item: \"Sofa\" | match\n[attribute:color] query: \"grey\" | item: \"Gray\" | match\n",
                           "[category] query: \"table\" | item: \"Table\" | match\n[attribute:material] query: \"oak\" | item: \"Pine\" | mismatch\n",
                           "[category] query: \"drill\" | item: \"Drill\" | match\n[attribute:color] query: \"red\" | item: \"Blue\" | mismatch\n",
                           "[category] query: \"sink\" | item: \"Sink\" | match\n[attribute:material] query: \"steel\" | item: \"Steel\" | match\n"};
    for (int i = 0; i < 4; ++i) {
      Pair p;
      p.id = "t" + std::to_string(i);
      p.query = q[i];
      p.item.title = t[i];
      pairs.push_back(p);
      cots.push_back(std::string(steps[i]) + "[conclusion] " + g[i] + "\n");
    }
    // Vocabulary: everything the conversations and the grade names use, then frozen.
    std::vector<ChatEncoding> data;
    for (int i = 0; i < 4; ++i) {
      auto msgs = render_chat(prompt, pairs[i], grades);
      msgs.push_back({"assistant", cots[static_cast<size_t>(i)]});
      data.push_back(chat.encode(msgs, *tok));
    }
    for (const auto& l : grades.labels) tok->encode("[conclusion] " + l + "\n");
    tok->freeze();

    DecoderConfig cfg;
    cfg.model_type = "qwen2";
    cfg.vocab_size = tok->vocab_size();
    cfg.hidden_size = 64;
    cfg.intermediate_size = 128;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 4;
    cfg.num_key_value_heads = 2;
    cfg.head_dim = 16;
    cfg.max_position_embeddings = 512;
    cfg.tie_word_embeddings = true;
    model = make_decoder(cfg, torch::kFloat32, torch::kCPU, 7);

    // Overfit: full-batch SFT on the responses.
    size_t len = 0;
    for (const auto& d : data) len = std::max(len, d.ids.size());
    auto ids = torch::zeros({4, static_cast<int64_t>(len)}, torch::kInt64);
    auto mask = torch::zeros({4, static_cast<int64_t>(len)}, torch::kInt64);
    auto loss_mask = torch::zeros({4, static_cast<int64_t>(len)}, torch::kFloat32);
    for (int64_t i = 0; i < 4; ++i) {
      const auto& d = data[static_cast<size_t>(i)];
      for (size_t t = 0; t < d.ids.size(); ++t) {
        ids[i][static_cast<int64_t>(t)] = d.ids[t];
        mask[i][static_cast<int64_t>(t)] = 1;
        loss_mask[i][static_cast<int64_t>(t)] = static_cast<float>(d.response_mask[t]);
      }
    }
    std::vector<std::pair<std::string, torch::Tensor>> params;
    for (auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
    AdamW opt(params, {3e-3, 0.9, 0.999, 1e-8, 0.0});
    model->train();
    for (int step = 0; step < 200; ++step) {
      opt.zero_grad();
      auto logits = model->forward(ids, mask);
      auto lp = torch::log_softmax(logits.slice(1, 0, -1), -1);
      auto nll = -lp.gather(-1, ids.slice(1, 1).unsqueeze(-1)).squeeze(-1);
      auto m = loss_mask.slice(1, 1);
      auto loss = (nll * m).sum() / m.sum();
      loss.backward();
      opt.step(3e-3);
      if (loss.item<double>() < 0.01) break;
    }
    model->eval();
  }

  std::shared_ptr<DecoderTeacher> teacher(bool no_cot) {
    DecoderTeacherOptions o;
    o.grades = grades;
    o.no_cot = no_cot;
    o.max_new_tokens = 64;
    return std::make_shared<DecoderTeacher>(o, model, tok, chat, prompt);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

}  // namespace

TEST(DecoderTeacher, CotBodyCutsAtTheConclusionLine) {
  EXPECT_EQ(cot_body("[category] a\n[conclusion] exact\n"), "[category] a\n");
  EXPECT_EQ(cot_body("[category] a\n[Conclusion] ex"), "[category] a\n");
  EXPECT_EQ(cot_body("[category] a"), "[category] a\n");
  EXPECT_EQ(cot_body("[category] a [conclusion] exact"), "[category] a\n");
  EXPECT_EQ(cot_body(""), "");
}

TEST(DecoderTeacher, OverfitTeacherRegeneratesItsCotsAndGrades) {
  auto& f = fixture();
  auto teacher = f.teacher(false);
  auto out = teacher->run(f.pairs);
  ASSERT_EQ(out.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].cot, f.cots[i]) << "pair " << i;
    int want = f.grades.index_of(i == 0 || i == 3 ? "exact" : "partial");
    EXPECT_GT(out[i].grade_probs[static_cast<size_t>(want)], 0.8) << "pair " << i;
    double sum = 0;
    for (double p : out[i].grade_probs) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }
}

TEST(DecoderTeacher, TeacherStageWritesTargets) {
  auto& f = fixture();
  auto teacher = f.teacher(false);
  auto dir = (fs::temp_directory_path() / ("ellm_teacher_e2e_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  EXPECT_EQ(run_teacher_shard(*teacher, f.pairs, f.grades, {dir, 0, 1, 2, false}), 4);
  TargetsConfig cfg;
  cfg.grades = f.grades;
  cfg.student = std::make_shared<test::FakeTokenizer>();
  cfg.limits.max_length = 32;
  json stats = write_teacher_outputs(dir, collect_in_order(dir, f.pairs, f.grades), cfg);
  EXPECT_EQ(stats["with_cot"], 4);
  EXPECT_EQ(stats["unlocated_terms"], 0);
  SafetensorsFile st(dir + "/targets.safetensors");
  EXPECT_EQ(st.info("input_ids").shape[0], 4);
  EXPECT_EQ(st.info("grade_probs").shape, (std::vector<int64_t>{4, 3}));
  // Pair 0: [CLS] grey ␣sofa [SEP] Harbor ␣Gray ␣Sofa [SEP]: color on grey/Gray, category on sofa/Sofa.
  auto bio = st.load("bio")[0];
  std::vector<int> want = {0, 7, 1, 0, 0, 7, 1, 0};
  for (size_t t = 0; t < want.size(); ++t) EXPECT_EQ(bio[static_cast<int64_t>(t)].item<uint8_t>(), want[t]) << t;
  auto lines = read_jsonl(dir + "/teacher.jsonl");
  EXPECT_EQ(lines[1]["pred"], "partial");
  fs::remove_all(dir);
}

TEST(DecoderTeacher, NoCotReadsTheDistributionAfterThePrompt) {
  auto& f = fixture();
  auto teacher = f.teacher(true);
  EXPECT_FALSE(teacher->generates_cot());
  auto out = teacher->run(f.pairs);
  for (const auto& o : out) {
    EXPECT_TRUE(o.cot.empty());
    double sum = 0;
    for (double p : o.grade_probs) sum += p;
    EXPECT_NEAR(sum, 1.0, 1e-9);
  }
}

TEST(DecoderTeacher, ServesRelevanceAndChatOverHttp) {
  auto& f = fixture();
  ServeOptions opt;
  opt.port = 0;
  RelevanceServer server(f.teacher(false), opt);
  server.start();
  httplib::Client cli("127.0.0.1", server.port());
  json req = {{"query", "grey sofa"}, {"items", {{{"title", "Harbor Gray Sofa"}}, {{"title", "Pine Table"}}}}};
  auto r = cli.Post("/v1/relevance", req.dump(), "application/json");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json out = json::parse(r->body);
  EXPECT_EQ(out["results"][0]["cot"], f.cots[0]);
  EXPECT_GT(out["results"][0]["grade_probs"]["exact"].get<double>(), 0.8);
  auto msgs = render_chat(f.prompt, f.pairs[1], f.grades);
  json chat = {{"messages", json::array()}, {"max_tokens", 64}};
  for (const auto& m : msgs) chat["messages"].push_back({{"role", m.role}, {"content", m.content}});
  auto c = cli.Post("/v1/chat/completions", chat.dump(), "application/json");
  ASSERT_EQ(c->status, 200) << c->body;
  json co = json::parse(c->body);
  EXPECT_EQ(co["choices"][0]["message"]["content"], f.cots[1]);
  EXPECT_EQ(co["choices"][0]["finish_reason"], "stop");
  server.stop();
}
