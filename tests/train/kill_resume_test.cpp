// `ellm finetune` killed with SIGKILL while it writes a checkpoint, then `--resume auto`:
// the half-written checkpoint is ignored (and cleaned up), the run continues from the newest
// complete one, and it ends with exactly the weights of a run that was never interrupted.
// The run uses LoRA with dropout, so the random draws must resume exactly too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "ellm/io/safetensors.h"
#include "ellm/train/trainer.h"
#include "finetune_cli_util.h"

using namespace ellm;
using namespace ellm::finetune_test;

namespace {

std::vector<std::string> temp_leftovers(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) out.push_back(e.path().filename().string());
  return out;
}

void expect_same_tensors(const std::string& a_path, const std::string& b_path) {
  SafetensorsFile a(a_path), b(b_path);
  ASSERT_EQ(a.tensors().size(), b.tensors().size()) << a_path << " vs " << b_path;
  ASSERT_GT(a.tensors().size(), 0u);
  for (const auto& t : a.tensors()) {
    ASSERT_TRUE(b.contains(t.name)) << b_path << " lacks " << t.name;
    EXPECT_TRUE(torch::equal(a.view(t.name), b.view(t.name))) << t.name << " differs between " << a_path << " and "
                                                              << b_path;
  }
}

}  // namespace

TEST(FinetuneKill, KilledMidCheckpointResumesToTheUninterruptedWeights) {
  fs::path d = ellm::testing::temp_dir("finetune-kill");
  std::string config = write_tiny_finetune(d / "in");
  const std::string full = (d / "full").string(), split = (d / "split").string();

  // The reference: 6 steps straight.
  pid_t pid = spawn_ellm({"finetune", "--config", config, "--out", full}, {}, (d / "full.log").string());
  int st = wait_for(pid, 120);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << describe(st) << "\n" << slurp((d / "full.log").string());

  // The same run, killed inside checkpoint-4 (after its first file, before DONE and the rename).
  pid = spawn_ellm({"finetune", "--config", config, "--out", split}, {{"ELLM_TEST_CHECKPOINT_PAUSE", "4"}},
                   (d / "killed.log").string());
  bool half_written = eventually(
      [&] {
        if (!fs::is_directory(split)) return false;
        for (const auto& e : fs::directory_iterator(split)) {
          std::string n = e.path().filename().string();
          if (n.rfind("checkpoint-4.tmp-", 0) == 0 && fs::exists(e.path() / "trainable.safetensors") &&
              slurp((d / "killed.log").string()).find("ELLM_TEST_CHECKPOINT_PAUSE") != std::string::npos)
            return true;
        }
        return false;
      },
      120);
  kill(pid, SIGKILL);
  st = wait_for(pid, 30);
  ASSERT_TRUE(half_written) << slurp((d / "killed.log").string());
  ASSERT_TRUE(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL) << describe(st);
  EXPECT_FALSE(fs::exists(split + "/checkpoint-4"));
  EXPECT_EQ(temp_leftovers(split).size(), 1u);
  EXPECT_EQ(Trainer::latest_checkpoint(split), split + "/checkpoint-2");

  // Resume: from checkpoint-2, the half-written directory ignored and removed.
  pid = spawn_ellm({"finetune", "--config", config, "--out", split, "--resume", "auto"}, {},
                   (d / "resumed.log").string());
  st = wait_for(pid, 120);
  std::string log = slurp((d / "resumed.log").string());
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << describe(st) << "\n" << log;
  EXPECT_NE(log.find("resumed from " + split + "/checkpoint-2"), std::string::npos) << log;
  EXPECT_TRUE(temp_leftovers(split).empty());
  for (const char* ckpt : {"checkpoint-2", "checkpoint-4", "checkpoint-6"})
    EXPECT_TRUE(fs::exists(fs::path(split) / ckpt / "DONE")) << ckpt;

  expect_same_tensors(full + "/checkpoint-6/trainable.safetensors", split + "/checkpoint-6/trainable.safetensors");
  expect_same_tensors(full + "/checkpoint-6/optimizer.safetensors", split + "/checkpoint-6/optimizer.safetensors");
  expect_same_tensors(full + "/final/model.safetensors", split + "/final/model.safetensors");
  fs::remove_all(d);
}
