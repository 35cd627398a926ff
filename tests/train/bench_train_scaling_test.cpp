// `ellm bench train-decoder` under `ellm launch -n 2`: the two ranks join one Gloo group,
// all-reduce gradients every step, and rank 0 alone prints the JSON line with the world
// size, per-rank and global tokens/s and (with --scaling) the efficiency against rank 0
// measured alone. A micro geometry and 0.2 s per measurement keep it to seconds.
#include <gtest/gtest.h>

#include "finetune_cli_util.h"

using namespace ellm;
using namespace ellm::finetune_test;

namespace {

std::string write_micro_geometry(const fs::path& dir) {
  fs::create_directories(dir);
  std::string path = (dir / "micro.json").string();
  write_file_atomic(path, json{{"architectures", {"Qwen2ForCausalLM"}},
                               {"model_type", "qwen2"},
                               {"vocab_size", 64},
                               {"hidden_size", 32},
                               {"intermediate_size", 64},
                               {"num_hidden_layers", 1},
                               {"num_attention_heads", 2},
                               {"num_key_value_heads", 1},
                               {"max_position_embeddings", 64},
                               {"tie_word_embeddings", true}}
                              .dump(2));
  return path;
}

// The JSON lines of a log (stdout and stderr of every rank, merged).
std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty() && line.front() == '{') out.push_back(json::parse(line));
  return out;
}

std::vector<std::string> bench_args(const std::string& geometry) {
  return {"bench", "train-decoder", "--model", geometry, "--dtype", "fp32", "--batch", "2", "--seq", "16", "--seconds", "0.2"};
}

}  // namespace

TEST(BenchTrainScaling, TwoRanksUnderLaunchPrintOneLineWithWorldSizeAndEfficiency) {
  fs::path d = ellm::testing::temp_dir("bench-scaling");
  std::string geometry = write_micro_geometry(d);
  std::vector<std::string> args{"launch", "-n", "2", "--"};
  for (auto& a : bench_args(geometry)) args.push_back(a);
  args.push_back("--scaling");
  args.push_back("--dist-timeout");
  args.push_back("30");
  std::string log = (d / "launch.log").string();
  int st = wait_for(spawn_ellm(args, {{"OMP_NUM_THREADS", "1"}}, log), 120);
  std::string text = slurp(log);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << describe(st) << "\n" << text;
  std::vector<json> lines = json_lines(text);
  ASSERT_EQ(lines.size(), 1u) << "only rank 0 prints\n" << text;
  const json& j = lines[0];
  EXPECT_EQ(j.at("name"), "decoder_train");
  EXPECT_EQ(j.at("config").at("world_size"), 2);
  EXPECT_GT(j.at("value").get<double>(), 0);
  EXPECT_GT(j.at("per_rank_tokens_per_s").get<double>(), 0);
  EXPECT_NEAR(j.at("global_tokens_per_s").get<double>(), 2 * j.at("per_rank_tokens_per_s").get<double>(), 1e-6);
  EXPECT_GT(j.at("single_rank_tokens_per_s").get<double>(), 0);
  EXPECT_GT(j.at("scaling_efficiency").get<double>(), 0);
  EXPECT_GE(j.at("steps").get<int>(), 3);
  fs::remove_all(d);
}

TEST(BenchTrainScaling, OneRankIsTheSameCommandWithWorldSizeOne) {
  fs::path d = ellm::testing::temp_dir("bench-scaling-1");
  std::string geometry = write_micro_geometry(d);
  std::string log = (d / "bench.log").string();
  int st = wait_for(spawn_ellm(bench_args(geometry), {{"OMP_NUM_THREADS", "1"}}, log), 60);
  std::string text = slurp(log);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << describe(st) << "\n" << text;
  std::vector<json> lines = json_lines(text);
  ASSERT_EQ(lines.size(), 1u) << text;
  EXPECT_EQ(lines[0].at("config").at("world_size"), 1);
  EXPECT_GT(lines[0].at("value").get<double>(), 0);
  EXPECT_FALSE(lines[0].contains("scaling_efficiency"));
  fs::remove_all(d);
}
