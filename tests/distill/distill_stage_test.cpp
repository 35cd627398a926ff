// The distill stage end to end through its library entry point (what
// `ellm distill` calls): a BERT vocab.txt student tokenizer, pairs.jsonl with
// train/dev splits, a CE-only run, then export of the two-tower's item vectors.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "../common/temp_dir.h"
#include "ellm/distill/distill_stage.h"
#include "ellm/io/safetensors.h"
#include "ellm/models/student.h"
#include "ellm/util/config.h"

using ellm::test_support::fresh_dir;

using namespace ellm;
namespace fs = std::filesystem;

namespace {

void write_data(const std::string& dir) {
  std::ofstream v(dir + "/vocab.txt");
  for (const char* w : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "grey", "red", "blue", "sofa", "chair", "table",
                        "lamp", "rug", "|"})
    v << w << "\n";
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
    p.item.title = std::string(colors[(i + 1) % 3]) + " " + products[b];
    p.label = a == b ? 2 : 0;
    p.split = i < 32 ? "train" : "dev";
    pairs.push_back(p);
  }
  write_pairs(dir + "/pairs.jsonl", pairs);
}

}  // namespace

TEST(DistillStage, CrossEncoderCeRunWritesLoadableStudents) {
  std::string dir = fresh_dir("ce");
  write_data(dir);
  json cfg = resolve_config(distill_default_config(), "",
                            {"tokenizer=" + dir + "/vocab.txt", "model.hidden_size=16", "model.num_hidden_layers=1",
                             "model.num_attention_heads=2", "model.intermediate_size=32", "train.batch_size=8",
                             "train.micro_batch_size=8", "train.epochs=2", "inputs.max_length=16"});
  Distributed single;
  TrainResult r = run_distill(cfg, {dir + "/pairs.jsonl", "", "", dir + "/out"}, false, single);
  EXPECT_EQ(r.steps, 8);
  ASSERT_TRUE(fs::exists(dir + "/out/final/vocab.txt"));
  ASSERT_TRUE(fs::exists(dir + "/out/best/model.safetensors"));
  auto probs = student_grade_probs(dir + "/out/final", read_pairs(dir + "/pairs.jsonl", "dev"), 4);
  ASSERT_EQ(probs.size(), 16u);
  ASSERT_EQ(probs[0].size(), 3u);
}

TEST(DistillStage, TwoTowerExportsUnitItemVectors) {
  std::string dir = fresh_dir("tt");
  write_data(dir);
  json cfg = resolve_config(distill_default_config(), "",
                            {"student=two-tower", "tokenizer=" + dir + "/vocab.txt", "model.hidden_size=16",
                             "model.num_hidden_layers=1", "model.num_attention_heads=2", "model.intermediate_size=32",
                             "model.projection_dim=8", "train.batch_size=8", "train.micro_batch_size=8",
                             "train.max_steps=3"});
  Distributed single;
  run_distill(cfg, {dir + "/pairs.jsonl", "", "", dir + "/out"}, false, single);
  auto student = load_student(dir + "/out/final");
  std::vector<Item> items;
  for (auto& p : read_pairs(dir + "/pairs.jsonl")) items.push_back(p.item);
  auto e = student->item_embeddings(items, 16);
  EXPECT_EQ(e.size(1), 8);
  EXPECT_TRUE(torch::allclose(e.norm(2, 1), torch::ones({e.size(0)}), 1e-5, 1e-6));
}
